import ArgumentParser
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

    @Option(help: "Address to bind (env TALLY_HOST, default 127.0.0.1).")
    var host: String?

    @Option(help: "Port to bind; 0 picks a free one (env TALLY_PORT, default 50051).")
    var port: Int?

    @Option(help: "Event loop threads (env TALLY_EVENT_LOOPS, default: CPUs in this process's affinity mask).")
    var eventLoops: Int?

    @Option(help: "Largest request message in bytes; larger ones get RESOURCE_EXHAUSTED (env TALLY_MAX_RECV_MESSAGE_BYTES, default 4194304).")
    var maxReceiveMessageBytes: Int?

    @Option(help: "Concurrent streams per connection, advertised in SETTINGS (env TALLY_MAX_CONCURRENT_STREAMS, default 1000).")
    var maxConcurrentStreams: Int?

    @Option(help: "Open connections per process; more get GOAWAY (env TALLY_MAX_CONNECTIONS, default 10000).")
    var maxConnections: Int?

    @Option(help: "Request header list size limit in bytes (env TALLY_MAX_HEADER_BYTES, default 16384).")
    var maxHeaderBytes: Int?

    @Option(help: "Deadline for unary and client-streaming calls without grpc-timeout, in ms; 0 for none (env TALLY_DEFAULT_DEADLINE_MS, default 60000).")
    var defaultDeadlineMs: Int?

    @Option(help: "Send a keepalive PING after this much connection idle time, in ms; 0 for never (env TALLY_KEEPALIVE_MS, default 7200000).")
    var keepaliveMs: Int?

    @Option(help: "Close a connection whose keepalive PING is not acknowledged within this time, in ms (env TALLY_KEEPALIVE_TIMEOUT_MS, default 20000).")
    var keepaliveTimeoutMs: Int?

    @Option(help: "Close connections with no open stream after this long, in ms; 0 for never (env TALLY_MAX_CONNECTION_IDLE_MS, default 0).")
    var maxConnectionIdleMs: Int?

    @Option(help: "On SIGTERM/SIGINT, how long in-flight calls may finish before they are cancelled, in ms (env TALLY_SHUTDOWN_GRACE_MS, default 10000).")
    var shutdownGraceMs: Int?

    @Option(help: "TLS certificate chain, PEM (env TALLY_TLS_CERT); with --tls-key enables TLS.")
    var tlsCert: String?

    @Option(help: "TLS private key, PEM (env TALLY_TLS_KEY).")
    var tlsKey: String?

    @Flag(help: "Also serve bench.v1.Echo/Echo, the benchmark method (env TALLY_BENCH_ECHO=1).")
    var benchEcho = false

    @Flag(help: "Do not apply database migrations at start (env TALLY_MIGRATE=0); they run when DATABASE_URL is set.")
    var noMigrate = false

    @Option(help: "This instance's name in AdminService stats (env TALLY_INSTANCE_ID, default <host name>-<pid>).")
    var instanceId: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical (env LOG_LEVEL, default info).")
    var logLevel: String?

    func run() async throws {
        let env = Environment()
        let server = try serverConfiguration(env)
        var logger = Logger(label: "tally")
        let level = env.string(logLevel, "LOG_LEVEL") ?? "info"
        guard let parsedLevel = Logger.Level(rawValue: level) else {
            throw ValidationError("LOG_LEVEL must be one of trace, debug, info, notice, warning, error, critical")
        }
        logger.logLevel = parsedLevel
        if !noMigrate, env.string(nil, "TALLY_MIGRATE") != "0", env.string(nil, "DATABASE_URL") != nil {
            _ = try await Migrate.migrate(environment: env.values, logger: logger)
        }

        let health = HealthStatusBoard()
        let loops = MultiThreadedEventLoopGroup(numberOfThreads: max(1, server.eventLoops))
        let backend = try Backend.make(env, group: loops, health: health, logger: logger)
        var router = RPCRouter(interceptors: [AdminAuthentication(key: env.string(nil, "ADMIN_KEY"))])
        if benchEcho || env.string(nil, "TALLY_BENCH_ECHO") == "1" {
            router.register(EchoService())
        }
        for service in backend?.services ?? [] { router.register(service) }
        let statistics = ServerStatistics()
        var admin = AdminService.Sources(instanceID: instanceID(env), server: statistics, health: health)
        backend?.report(into: &admin)
        router.register(AdminService(sources: admin))
        router.register(HealthService(board: health))
        router.register(ReflectionService(servedServices: router.serviceNames))
        health.set("", .serving)
        for service in router.serviceNames { health.set(service, .serving) }

        let grpc = GRPCServer(configuration: server, router: router, logger: logger, group: loops, statistics: statistics)
        // Shutdown runs in reverse: the server drains its calls first, the workers their jobs,
        // and the database pools close last.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = (backend?.lifecycle ?? []).map { .init(service: $0) }
        services.append(.init(service: GRPCServerService(server: grpc, health: health)))
        let group = ServiceGroup(
            configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        await backend?.shutdown()
        try await loops.shutdownGracefully()
    }

    /// How this instance names itself in admin stats: `--instance-id`, or host name and pid.
    private func instanceID(_ env: Environment) -> String {
        env.string(instanceId, "TALLY_INSTANCE_ID") ?? "\(ProcessInfo.processInfo.hostName)-\(getpid())"
    }

    private func serverConfiguration(_ env: Environment) throws -> ServerConfiguration {
        var config = ServerConfiguration.defaults
        config.host = env.string(host, "TALLY_HOST") ?? config.host
        config.port = try env.int(port, "TALLY_PORT", default: config.port, range: 0...65535)
        config.eventLoops = try env.int(eventLoops, "TALLY_EVENT_LOOPS", default: config.eventLoops, range: 1...256)
        config.maxReceiveMessageSize = try env.int(
            maxReceiveMessageBytes, "TALLY_MAX_RECV_MESSAGE_BYTES", default: config.maxReceiveMessageSize, range: 1...(1 << 30))
        config.maxConcurrentStreams = try env.int(
            maxConcurrentStreams, "TALLY_MAX_CONCURRENT_STREAMS", default: config.maxConcurrentStreams, range: 1...(1 << 31 - 1))
        config.maxConnections = try env.int(maxConnections, "TALLY_MAX_CONNECTIONS", default: config.maxConnections, range: 1...1_000_000)
        config.maxHeaderListSize = try env.int(maxHeaderBytes, "TALLY_MAX_HEADER_BYTES", default: config.maxHeaderListSize, range: 1024...(1 << 24))
        config.defaultUnaryDeadline = try env.milliseconds(
            defaultDeadlineMs, "TALLY_DEFAULT_DEADLINE_MS", default: config.defaultUnaryDeadline, zeroMeansNone: true)
        config.keepaliveTime = try env.milliseconds(keepaliveMs, "TALLY_KEEPALIVE_MS", default: config.keepaliveTime, zeroMeansNone: true)
        config.keepaliveTimeout = try env.milliseconds(
            keepaliveTimeoutMs, "TALLY_KEEPALIVE_TIMEOUT_MS", default: config.keepaliveTimeout) ?? config.keepaliveTimeout
        config.maxConnectionIdle = try env.milliseconds(
            maxConnectionIdleMs, "TALLY_MAX_CONNECTION_IDLE_MS", default: config.maxConnectionIdle, zeroMeansNone: true)
        config.shutdownGracePeriod = try env.milliseconds(
            shutdownGraceMs, "TALLY_SHUTDOWN_GRACE_MS", default: config.shutdownGracePeriod) ?? config.shutdownGracePeriod
        let cert = env.string(tlsCert, "TALLY_TLS_CERT")
        let key = env.string(tlsKey, "TALLY_TLS_KEY")
        switch (cert, key) {
        case (let cert?, let key?): config.tls = .init(certificateChainPath: cert, privateKeyPath: key)
        case (nil, nil): config.tls = nil
        default: throw ValidationError("TLS needs both a certificate (TALLY_TLS_CERT) and a key (TALLY_TLS_KEY)")
        }
        return config
    }
}
