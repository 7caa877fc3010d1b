import Codec
import GRPCClient
import Logging
import NIOCore
import NIOPosix
import RPCServer
import Synchronization

/// A Tally server in the test process on 127.0.0.1 and a free port, serving Echo, Health,
/// Reflection and `ProbeService`, with a client connection to it.
struct TestServer {
    let server: GRPCServer
    let port: Int
    let probe: ProbeService
    static let clientGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    static func start(_ configure: (inout ServerConfiguration) -> Void = { _ in }) async throws -> TestServer {
        var configuration = ServerConfiguration.defaults
        configuration.host = "127.0.0.1"
        configuration.port = 0
        configuration.eventLoops = 1
        configuration.shutdownGracePeriod = .seconds(2)
        configure(&configuration)
        var router = RPCRouter()
        let probe = ProbeService()
        router.register(EchoService())
        router.register(probe)
        let health = HealthStatusBoard()
        router.register(HealthService(board: health))
        health.set("", .serving)
        var logger = Logger(label: "test-server")
        logger.logLevel = .critical
        let server = GRPCServer(configuration: configuration, router: router, logger: logger)
        let address = try await server.start()
        return TestServer(server: server, port: address.port!, probe: probe)
    }

    func connect(_ configure: (inout GRPCClientConfiguration) -> Void = { _ in }) async throws -> GRPCConnection {
        var configuration = GRPCClientConfiguration(host: "127.0.0.1", port: port)
        configure(&configuration)
        return try await GRPCConnection.connect(configuration, group: Self.clientGroup)
    }

    /// Runs `body` with a fresh server and connection, then shuts both down.
    static func with(
        _ configure: (inout ServerConfiguration) -> Void = { _ in },
        _ body: (TestServer, GRPCConnection) async throws -> Void
    ) async throws {
        let server = try await start(configure)
        let connection = try await server.connect()
        do {
            try await body(server, connection)
        } catch {
            await connection.close()
            await server.server.shutdown()
            throw error
        }
        await connection.close()
        await server.server.shutdown()
    }
}

/// `tally.testing.v1.Probe`-like test service: a handler that waits until cancelled and
/// counts how its calls ended, so tests can see that cancellation reached the handler.
final class ProbeService: RPCService, Sendable {
    let started = Atomic<Int>(0)
    let cancelled = Atomic<Int>(0)

    static let hangPath = "/tally.testing.v1.Probe/Hang"

    var methods: [RPCMethod] {
        [
            .unary(Self.hangPath) { [self] (request: Bench_V1_EchoRequest, context: ServerContext) -> Bench_V1_EchoResponse in
                started.add(1, ordering: .relaxed)
                do {
                    try await Task.sleep(for: .seconds(30))
                } catch {
                    cancelled.add(1, ordering: .relaxed)
                    throw error
                }
                return Bench_V1_EchoResponse()
            }
        ]
    }

    /// Waits (bounded, 5 s) until `counter()` reaches `value`.
    static func wait(until value: Int, _ counter: () -> Int) async -> Bool {
        for _ in 0..<250 {
            if counter() >= value { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return false
    }
}

extension Bench_V1_EchoRequest {
    init(payload: [UInt8], repeat count: Int32 = 0) {
        self.init()
        self.payload = payload
        self.repeat = count
    }
}
