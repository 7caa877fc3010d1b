import ArgumentParser
import CoreMetrics
import Domain
import Foundation
import Logging
import NIOPosix
import RPCServer
import ServiceLifecycle

/// `tally serve`: the gRPC server.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the gRPC API (h2c, or TLS with ALPN h2 when a certificate is given).")

    @OptionGroup var settings: TallySettings

    func run() async throws {
        let config = try settings.configuration()
        config.logOutput.bootstrap()
        var logger = Logger(label: "tally")
        logger.logLevel = config.logLevel
        if config.migrateAtStart, let storage = config.storage {
            _ = try await Migrate.migrate(storage.primary, product: config.product, logger: logger)
        }

        // One registry for the process: the server's call metrics, the domains' and libraries'
        // (through swift-metrics' global factory), read by /metrics and AdminService.Metrics.
        let metrics = MetricsRegistry()
        MetricsSystem.bootstrap(metrics.factory)
        let health = HealthStatusBoard()
        let loops = MultiThreadedEventLoopGroup(numberOfThreads: max(1, config.server.eventLoops))
        let backend = config.storage.map { Backend(storage: $0, product: config.product, group: loops, health: health, logger: logger) }
        if backend == nil { logger.notice("DATABASE_URL or REDIS_URL not set: serving without the product services") }
        var tokens: SessionTokens?
        if let secret = config.sessionSecret {
            tokens = await SessionTokens(secret: secret)
        } else if backend != nil {
            logger.notice("TALLY_SESSION_SECRET not set: presence streams trust Hello.user_id (development only)")
        }
        var router = RPCRouter(
            interceptors: [AdminAuthentication(key: config.adminKey)] + (backend?.interceptors(sessionTokens: tokens) ?? []),
            metrics: config.callMetrics ? metrics : nil)
        if config.benchEcho { router.register(EchoService()) }
        if config.interopTestService { router.register(InteropTestService(maxResponseBytes: config.server.maxSendMessageSize)) }
        for service in backend?.services ?? [] { router.register(service) }
        let statistics = ServerStatistics()
        var admin = AdminService.Sources(instanceID: config.instanceID, server: statistics, health: health, metrics: metrics)
        backend?.report(into: &admin)
        router.register(AdminService(sources: admin))
        router.register(HealthService(board: health))
        router.register(ReflectionService(servedServices: router.serviceNames))
        health.set("", .serving)
        for service in router.serviceNames { health.set(service, .serving) }

        let grpc = GRPCServer(configuration: config.server, router: router, logger: logger, group: loops, statistics: statistics)
        // Shutdown runs in reverse: the server drains its calls first, the workers their jobs,
        // and the database pools close last.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = (backend?.lifecycle ?? []).map { .init(service: $0) }
        if let port = config.metricsPort {
            let endpoint = OperationsEndpoint.Configuration(host: config.server.host, port: port, instanceID: config.instanceID)
            services.append(.init(service: OperationsEndpoint(configuration: endpoint, metrics: metrics, health: health, group: loops, logger: logger)))
        }
        services.append(.init(service: GRPCServerService(server: grpc, health: health)))
        let group = ServiceGroup(
            configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        await backend?.product.shutdown()
        try await loops.shutdownGracefully()
    }
}
