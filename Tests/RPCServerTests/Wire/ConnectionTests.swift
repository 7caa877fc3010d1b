import Codec
import GRPCClient
import NIOCore
import NIOPosix
import Testing

/// The connection level: protocol garbage, connection limits, header limits, health and
/// graceful shutdown.
@Suite struct ConnectionTests {
    static let echo = "/bench.v1.Echo/Echo"

    /// Writes `bytes` on a plain TCP connection and waits (bounded) for the server to close it.
    static func serverCloses(port: Int, after bytes: [UInt8]) async throws -> Bool {
        let closed = TestServer.clientGroup.next().makePromise(of: Void.self)
        let channel = try await ClientBootstrap(group: TestServer.clientGroup)
            .channelInitializer { channel in
                channel.closeFuture.whenComplete { _ in closed.succeed() }
                return channel.eventLoop.makeSucceededVoidFuture()
            }
            .connect(host: "127.0.0.1", port: port).get()
        try await channel.writeAndFlush(ByteBuffer(bytes: bytes))
        let timeout = channel.eventLoop.scheduleTask(in: .seconds(5)) { closed.fail(CancellationError()) }
        defer { timeout.cancel() }
        do {
            try await closed.futureResult.get()
            return true
        } catch {
            try? await channel.close()
            return false
        }
    }

    @Test(arguments: [
        Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8),
        [UInt8](repeating: 0, count: 100),
        Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8) + [0, 0, 4, 0xFF, 0, 0, 0, 0, 0, 1, 2, 3, 4],
    ])
    func garbageInsteadOfHTTP2ClosesTheConnectionOnly(bytes: [UInt8]) async throws {
        try await TestServer.with { server, connection in
            #expect(try await Self.serverCloses(port: server.port, after: bytes))
            let response = try await connection.unary(Self.echo, Bench_V1_EchoRequest(payload: [1]), as: Bench_V1_EchoResponse.self)
            #expect(response.message.payload == [1])
        }
    }

    @Test func connectionLimitRefusesTheExtraConnection() async throws {
        try await TestServer.with({ $0.maxConnections = 1 }) { server, connection in
            _ = try await connection.unary(Self.echo, Bench_V1_EchoRequest(), as: Bench_V1_EchoResponse.self)
            let second = try await server.connect()
            do {
                _ = try await second.unary(Self.echo, Bench_V1_EchoRequest(), as: Bench_V1_EchoResponse.self)
                Issue.record("a call over the limit succeeded")
            } catch let error as CallError {
                #expect(error.status.code == .unavailable || error.status.code == .resourceExhausted)
            }
            await second.close()
            #expect(server.server.statistics.snapshot.refusedConnections >= 1)
        }
    }

    @Test func oversizeHeadersAreRefused() async throws {
        try await TestServer.with({ $0.maxHeaderListSize = 2048 }) { _, connection in
            var metadata = Metadata()
            metadata.add("x-big", String(repeating: "a", count: 4000))
            do {
                _ = try await connection.unary(Self.echo, Bench_V1_EchoRequest(), as: Bench_V1_EchoResponse.self, metadata: metadata)
                Issue.record("a call with 4 kB of headers succeeded")
            } catch let error as CallError {
                #expect(error.status.code != .ok)
            }
        }
    }

    @Test func healthCheck() async throws {
        try await TestServer.with { _, connection in
            var request = Grpc_Health_V1_HealthCheckRequest()
            request.service = ""
            let response = try await connection.unary(
                "/grpc.health.v1.Health/Check", request, as: Grpc_Health_V1_HealthCheckResponse.self)
            #expect(response.message.status == .serving)
        }
    }

    @Test func gracefulShutdownFinishesInFlightCallsAndRefusesNewOnes() async throws {
        let server = try await TestServer.start { $0.shutdownGracePeriod = .seconds(5) }
        let connection = try await server.connect()
        var metadata = Metadata()
        metadata.add("x-tally-echo-delay-ms", "500")
        async let slow = connection.unary(Self.echo, Bench_V1_EchoRequest(payload: [42]), as: Bench_V1_EchoResponse.self, metadata: metadata)
        try await Task.sleep(for: .milliseconds(100))
        async let stopped: Void = server.server.shutdown()
        try await Task.sleep(for: .milliseconds(100))
        // The listener is closed: a new connection is refused.
        await #expect(throws: CallError.self) { _ = try await server.connect() }
        // On the open connection a new call either slipped in before the final GOAWAY (HTTP/2
        // graceful shutdown announces it first) or is refused; it never hangs.
        let late = await ErrorPathTests.status {
            _ = try await connection.unary(Self.echo, Bench_V1_EchoRequest(), as: Bench_V1_EchoResponse.self)
        }
        #expect(late == nil || late?.code == .unavailable)
        #expect(try await slow.message.payload == [42])
        await stopped
        await connection.close()
    }
}
