public import Codec
public import Logging
public import NIOCore
public import NIOPosix
import NIOSSL
import Synchronization

/// The gRPC server: binds, accepts HTTP/2 connections (h2c, or TLS with ALPN `h2`), and
/// dispatches their streams through a router.
public final class GRPCServer: Sendable {
    public let configuration: ServerConfiguration
    public let statistics: ServerStatistics
    private let router: RPCRouter
    private let logger: Logger
    private let group: MultiThreadedEventLoopGroup
    /// False when the caller lent the loops (and shuts them down itself).
    private let ownsGroup: Bool
    private let executors: [ObjectIdentifier: EventLoopTaskExecutor]
    private let registry: ConnectionRegistry
    private let channel = Mutex<(any Channel)?>(nil)

    /// `group`: loops to serve on, shared with other parts (e.g. the Redis client, so handlers
    /// reach Redis without a thread hop); by default the server makes its own
    /// (`configuration.eventLoops` of them) and stops them at shutdown. `statistics`: the
    /// counters to keep (pass one made earlier when a service reports them).
    public init(
        configuration: ServerConfiguration, router: RPCRouter, logger: Logger, group: MultiThreadedEventLoopGroup? = nil,
        statistics: ServerStatistics = ServerStatistics()
    ) {
        self.configuration = configuration
        self.router = router
        self.logger = logger
        self.group = group ?? MultiThreadedEventLoopGroup(numberOfThreads: max(1, configuration.eventLoops))
        self.ownsGroup = group == nil
        var executors: [ObjectIdentifier: EventLoopTaskExecutor] = [:]
        for loop in self.group.makeIterator() {
            executors[ObjectIdentifier(loop)] = EventLoopTaskExecutor(eventLoop: loop)
        }
        self.executors = executors
        self.registry = ConnectionRegistry(limit: configuration.maxConnections, statistics: statistics)
        self.statistics = statistics
    }

    /// The event loops serving connections; other parts (e.g. a Redis client with one
    /// connection per loop) can attach to the same loops.
    public var eventLoopGroup: any EventLoopGroup { group }

    /// The task executor of a loop of the group (handlers run on it), for work that should
    /// run where the handlers do.
    public func taskExecutor(for loop: any EventLoop) -> EventLoopTaskExecutor? {
        executors[ObjectIdentifier(loop)]
    }

    /// Binds and starts accepting; returns the bound address (port 0 picks a free port).
    public func start() async throws -> SocketAddress {
        let tlsContext = try configuration.tls.map(Self.makeTLSContext)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { [configuration, router, executors, registry, logger] channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tlsContext {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tlsContext))
                    }
                    let executor = executors[ObjectIdentifier(channel.eventLoop)]!
                    let connection = ServerConnection(
                        configuration: configuration, router: router, executor: executor, registry: registry,
                        logger: logger)
                    try channel.pipeline.syncOperations.addHandler(connection)
                }
            }
        let bound: any Channel
        do {
            bound = try await bootstrap.bind(host: configuration.host, port: configuration.port).get()
        } catch let error as IOError {
            // "bind(descriptor:ptr:bytes:): Address already in use (errno: 98)" says less to an operator.
            throw ListenError(description: "cannot listen on \(configuration.host):\(configuration.port): \(String(cString: strerror(error.errnoCode)))")
        }
        channel.withLock { $0 = bound }
        logger.info("serving gRPC", metadata: ["address": "\(bound.localAddress.map { "\($0)" } ?? "?")", "tls": "\(tlsContext != nil)"])
        return bound.localAddress!
    }

    /// Open connections right now.
    public var connectionCount: Int { registry.count }

    /// Stops accepting, drains every connection (GOAWAY; in-flight calls get up to the grace
    /// period), then stops the event loops.
    public func shutdown() async {
        let listener = channel.withLock { channel -> (any Channel)? in
            defer { channel = nil }
            return channel
        }
        guard let listener else { return }
        try? await listener.close()
        registry.shutdownAll(grace: configuration.shutdownGracePeriod)
        let deadline = ContinuousClock.now + configuration.shutdownGracePeriod + .seconds(2)
        while registry.count > 0, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        if ownsGroup { try? await group.shutdownGracefully() }
        logger.info("server stopped")
    }

    private static func makeTLSContext(_ tls: ServerConfiguration.TLS) throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(tls.certificateChainPath).map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: tls.privateKeyPath, format: .pem)))
        configuration.applicationProtocols = ["h2"]
        return try NIOSSLContext(configuration: configuration)
    }
}

/// The server could not open its listening socket (address in use, not allowed, unknown host).
public struct ListenError: Error, CustomStringConvertible {
    public var description: String
}
