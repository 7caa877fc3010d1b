import Codec
import Foundation
import GRPCClient
import NIOCore
import NIOPosix
import RPCServer
import Testing

/// Connection-level behaviour: many streams, limits, GOAWAY and shutdown, broken peers, TLS.
@Suite("Wire: connections")
struct ConnectionTests {
    static let echo = "/bench.v1.Echo/Echo"

    static func sleepCall(_ connection: GRPCConnection, _ id: String, milliseconds: Int) async throws -> RawMessage {
        try await connection.unary("/test.Probe/Sleep", RawMessage(Array("\(id):\(milliseconds)".utf8)), as: RawMessage.self).message
    }

    @Test("2,000 concurrent calls over one connection to a server allowing 10 streams all succeed", arguments: [false, true])
    func manyStreams(onLoop: Bool) async throws {
        try await TestServer.with({ $0.maxConcurrentStreams = 10 }) { server in
            try await server.withConnection { connection in
                let executor: (any TaskExecutor)? = onLoop ? connection.taskExecutor : nil
                let results = try await withThrowingTaskGroup(of: Bool.self) { group in
                    for index in 0..<2000 {
                        group.addTask(executorPreference: executor) {
                            let sent = payload(16, seed: index)
                            let response = try await connection.unary(
                                Self.echo, Bench_V1_EchoRequest(payload: sent), as: Bench_V1_EchoResponse.self)
                            return response.message.payload == sent
                        }
                    }
                    var all: [Bool] = []
                    for try await ok in group { all.append(ok) }
                    return all
                }
                #expect(results.count == 2000)
                #expect(results.allSatisfy { $0 })
                // A unary call returns at its trailers; nghttp2 closes the stream right after.
                #expect(await eventually { connection.activeStreams == 0 })
            }
        }
    }

    @Test("a call queued behind the server's stream limit can be cancelled before it starts")
    func cancelQueuedCall() async throws {
        try await TestServer.with({ $0.maxConcurrentStreams = 1 }) { server in
            try await server.withConnection { connection in
                let running = try connection.makeCall("/test.Probe/Hang")
                try await running.sendRaw(Array("running".utf8))
                try await running.finishSending()
                #expect(await eventually { server.probe.events("running") == [.started] })
                let queued = try connection.makeCall("/test.Probe/Hang")
                try await queued.sendRaw(Array("queued".utf8))
                try await queued.finishSending()
                #expect(await eventually { connection.activeStreams == 2 })
                queued.cancel()
                #expect(await queued.status().code == .cancelled)
                #expect(await eventually { connection.activeStreams == 1 })
                running.cancel()
                #expect(await eventually { connection.activeStreams == 0 })
                #expect(server.probe.events("queued").isEmpty)  // never reached the server
                let after = try await connection.unary(Self.echo, Bench_V1_EchoRequest(payload: [5]), as: Bench_V1_EchoResponse.self)
                #expect(after.message.payload == [5])
            }
        }
    }

    @Test("over the server's connection limit, calls fail UNAVAILABLE naming the limit")
    func connectionLimit() async throws {
        try await TestServer.with({ $0.maxConnections = 1 }) { server in
            try await server.withConnection { first in
                _ = try await first.unary(Self.echo, Bench_V1_EchoRequest(payload: [1]), as: Bench_V1_EchoResponse.self)
                var failure: CallError?
                do {
                    let second = try await GRPCConnection.connect(server.clientConfiguration(), group: MultiThreadedEventLoopGroup.singleton)
                    defer { Task { await second.close() } }
                    _ = try await second.unary(Self.echo, Bench_V1_EchoRequest(payload: [2]), as: Bench_V1_EchoResponse.self)
                } catch let error as CallError {
                    failure = error
                }
                #expect(failure?.code == .unavailable)
                #expect(failure?.status.message.contains("max connections reached") == true, "\(failure?.status.message ?? "no error")")
                // The first connection is unaffected.
                _ = try await first.unary(Self.echo, Bench_V1_EchoRequest(payload: [3]), as: Bench_V1_EchoResponse.self)
            }
        }
    }

    @Test("graceful shutdown: the in-flight call completes, new calls get UNAVAILABLE")
    func gracefulShutdown() async throws {
        try await TestServer.with { server in
            try await server.withConnection { connection in
                // Held in the handler until the refusals are checked: a slow machine cannot
                // finish it early.
                let inFlight = Task {
                    try await connection.unary("/test.Probe/Held", RawMessage(Array("drain".utf8)), as: RawMessage.self).message
                }
                #expect(await eventually { server.probe.events("drain") == [.started] })
                let shutdown = Task { await server.server.shutdown() }
                #expect(await eventually { !connection.isAcceptingCalls })
                let refused = await #expect(throws: CallError.self) {
                    try await connection.unary(Self.echo, Bench_V1_EchoRequest(payload: [1]), as: Bench_V1_EchoResponse.self)
                }
                #expect(refused?.code == .unavailable)
                let reconnect = await #expect(throws: CallError.self) {
                    _ = try await GRPCConnection.connect(server.clientConfiguration(), group: MultiThreadedEventLoopGroup.singleton)
                }
                #expect(reconnect?.code == .unavailable)
                server.probe.release("drain")
                let response = try await inFlight.value
                #expect(response.bytes == Array("drain".utf8))
                await shutdown.value
            }
        }
    }

    @Test("GOAWAY fails calls still queued on the client with UNAVAILABLE; the running one completes")
    func goAwayWithQueuedCalls() async throws {
        try await TestServer.with({ $0.maxConcurrentStreams = 1 }) { server in
            try await server.withConnection { connection in
                // Held in the handler (the one stream allowed) until the queued calls have
                // failed, so none of them can start first, however slow the machine.
                let running = Task {
                    try await connection.unary("/test.Probe/Held", RawMessage(Array("first".utf8)), as: RawMessage.self).message
                }
                #expect(await eventually { server.probe.events("first") == [.started] })
                let queued = (0..<5).map { index in
                    Task { try await Self.sleepCall(connection, "queued\(index)", milliseconds: 0) }
                }
                #expect(await eventually { connection.activeStreams == 6 })
                let shutdown = Task { await server.server.shutdown() }
                for task in queued {
                    let error = await #expect(throws: CallError.self) { try await task.value }
                    #expect(error?.code == .unavailable)
                    #expect(error?.status.message.contains("going away") == true, "\(error?.status.message ?? "")")
                }
                server.probe.release("first")
                let first = try await running.value
                #expect(first.bytes == Array("first".utf8))
                await shutdown.value
            }
        }
    }

    @Test("close() ends the connection; later calls fail UNAVAILABLE")
    func clientClose() async throws {
        try await TestServer.with { server in
            let connection = try await GRPCConnection.connect(server.clientConfiguration(), group: MultiThreadedEventLoopGroup.singleton)
            let hanging = try connection.makeCall("/test.Probe/Hang")
            try await hanging.sendRaw(Array("closed".utf8))
            try await hanging.finishSending()
            #expect(await eventually { server.probe.events("closed") == [.started] })
            await connection.close()
            #expect(await hanging.status().code == .unavailable)
            #expect(throws: CallError.self) { _ = try connection.makeCall(Self.echo) }
            let error = await #expect(throws: CallError.self) {
                try await connection.unary(Self.echo, Bench_V1_EchoRequest(payload: [1]), as: Bench_V1_EchoResponse.self)
            }
            #expect(error?.code == .unavailable)
            #expect(await eventually { server.probe.events("closed").last == .cancelled })
        }
    }

    @Test("garbage instead of the HTTP/2 preface: the server closes that socket and keeps serving")
    func garbagePreface() async throws {
        try await TestServer.with { server in
            try await server.withConnection { connection in
                let raw = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                    .connect(host: "127.0.0.1", port: server.port).get()
                var garbage = raw.allocator.buffer(capacity: 64)
                garbage.writeString("GET / HTTP/1.1\r\nHost: tally\r\n\r\n")
                garbage.writeBytes(payload(200))
                try await raw.writeAndFlush(garbage)
                let closed = await eventually { !raw.isActive }
                #expect(closed, "the server must close a connection that does not start with the HTTP/2 preface")
                if !closed { try? await raw.close() }
                // Existing and new connections still work.
                _ = try await connection.unary(Self.echo, Bench_V1_EchoRequest(payload: [1]), as: Bench_V1_EchoResponse.self)
                try await server.withConnection { fresh in
                    _ = try await fresh.unary(Self.echo, Bench_V1_EchoRequest(payload: [2]), as: Bench_V1_EchoResponse.self)
                }
            }
        }
    }

    @Test("a connection lost mid-call fails the call UNAVAILABLE")
    func connectionLost() async throws {
        // A fake server: SETTINGS, then it drops the connection when the first request HEADERS arrive.
        let fake = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(DropOnRequest()) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        defer { fake.close(promise: nil) }
        let configuration = GRPCClientConfiguration(host: "127.0.0.1", port: fake.localAddress!.port!)
        let connection = try await GRPCConnection.connect(configuration, group: MultiThreadedEventLoopGroup.singleton)
        let error = await #expect(throws: CallError.self) {
            try await connection.unary(Self.echo, Bench_V1_EchoRequest(payload: [1]), as: Bench_V1_EchoResponse.self)
        }
        #expect(error?.code == .unavailable)
        #expect(!connection.isAcceptingCalls)
        #expect(connection.activeStreams == 0)
        await connection.close()
    }

    @Test("connect to a port nobody listens on fails UNAVAILABLE")
    func connectRefused() async throws {
        let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        let port = listener.localAddress!.port!
        try await listener.close()
        let error = await #expect(throws: CallError.self) {
            _ = try await GRPCConnection.connect(
                GRPCClientConfiguration(host: "127.0.0.1", port: port), group: MultiThreadedEventLoopGroup.singleton)
        }
        #expect(error?.code == .unavailable)
    }
}

/// Sends an empty SETTINGS frame on connect, then closes when a HEADERS frame arrives.
private final class DropOnRequest: ChannelInboundHandler, @unchecked Sendable {  // confined to its channel's loop
    typealias InboundIn = ByteBuffer
    private var received: ByteBuffer?

    func channelActive(context: ChannelHandlerContext) {
        var settings = context.channel.allocator.buffer(capacity: 9)
        settings.writeBytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
        context.writeAndFlush(NIOAny(settings), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if received == nil { received = bytes } else { received!.writeBuffer(&bytes) }
        guard var buffer = received, buffer.readableBytes >= 24 else { return }
        buffer.moveReaderIndex(forwardBy: 24)  // the client preface
        while buffer.readableBytes >= 9 {
            let length = Int(buffer.getInteger(at: buffer.readerIndex, as: UInt32.self)! >> 8)
            let type = buffer.getInteger(at: buffer.readerIndex + 3, as: UInt8.self)!
            if type == 1 {
                context.close(promise: nil)
                return
            }
            guard buffer.readableBytes >= 9 + length else { return }
            buffer.moveReaderIndex(forwardBy: 9 + length)
        }
    }
}
