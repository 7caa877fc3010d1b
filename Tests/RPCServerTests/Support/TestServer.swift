import Codec
import GRPCClient
import Logging
import NIOCore
import NIOPosix
import RPCServer

/// An in-process Tally server on 127.0.0.1 and a free port, serving what `tally serve
/// --bench-echo` serves (Echo, Health, Reflection) plus the test-only `ProbeService`.
struct TestServer {
    let server: GRPCServer
    let port: Int
    let probe: ProbeLog
    let health: HealthStatusBoard

    /// Starts a server (one event loop) with `configure` applied to the defaults.
    static func start(_ configure: (inout ServerConfiguration) -> Void = { _ in }) async throws -> TestServer {
        var configuration = ServerConfiguration.defaults
        configuration.host = "127.0.0.1"
        configuration.port = 0
        configuration.eventLoops = 1
        configuration.shutdownGracePeriod = .seconds(5)
        configure(&configuration)
        let probe = ProbeLog()
        let health = HealthStatusBoard()
        var router = RPCRouter()
        router.register(EchoService())
        router.register(ProbeService(log: probe))
        router.register(HealthService(board: health))
        router.register(ReflectionService(servedServices: router.serviceNames))
        health.set("", .serving)
        for service in router.serviceNames { health.set(service, .serving) }
        var logger = Logger(label: "wire-test")
        logger.logLevel = .critical
        let server = GRPCServer(configuration: configuration, router: router, logger: logger)
        let address = try await server.start()
        return TestServer(server: server, port: address.port!, probe: probe, health: health)
    }

    /// Runs `body` against a fresh server and always shuts the server down.
    static func with<R>(
        _ configure: (inout ServerConfiguration) -> Void = { _ in }, _ body: (TestServer) async throws -> R
    ) async throws -> R {
        let server = try await start(configure)
        do {
            let result = try await body(server)
            await server.server.shutdown()
            return result
        } catch {
            await server.server.shutdown()
            throw error
        }
    }

    func clientConfiguration(_ configure: (inout GRPCClientConfiguration) -> Void = { _ in }) -> GRPCClientConfiguration {
        var configuration = GRPCClientConfiguration(host: "127.0.0.1", port: port)
        configure(&configuration)
        return configuration
    }

    /// Connects a client, runs `body`, and closes the connection.
    func withConnection<R>(
        _ configure: (inout GRPCClientConfiguration) -> Void = { _ in }, _ body: (GRPCConnection) async throws -> R
    ) async throws -> R {
        let connection = try await GRPCConnection.connect(clientConfiguration(configure), group: MultiThreadedEventLoopGroup.singleton)
        do {
            let result = try await body(connection)
            await connection.close()
            return result
        } catch {
            await connection.close()
            throw error
        }
    }
}

/// Polls `condition` until it holds or `timeout` passes (for effects on the server side that
/// the client cannot await directly, like a handler noticing cancellation).
func eventually(timeout: Duration = .seconds(10), _ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return condition()
}

extension Bench_V1_EchoRequest {
    init(payload: [UInt8], repeat count: Int32 = 0) {
        self.init()
        self.payload = payload
        self.repeat = count
    }
}

/// Deterministic, non-trivial payload bytes.
func payload(_ count: Int, seed: Int = 0) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ seed) }
}
