import Codec
import GRPCClient
import NIOCore
import NIOPosix
import Synchronization
import Testing

/// `GRPCConnection.startUnary`: unary calls completed by callback on the connection's loop.
@Suite("Wire: callback unary calls")
struct StartUnaryTests {
    static let echo = "/bench.v1.Echo/Echo"

    /// The gRPC framing of `message`, built once and shared by every call of a test.
    static func framed(_ message: some ProtobufMessage) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: message.encodedSize + 5)
        MessageFramer.frame(message, into: &buffer)
        return buffer
    }

    /// One result with whether its completion ran on the connection's event loop.
    struct Completed: Sendable {
        var result: RawUnaryResult
        var onLoop: Bool
    }

    /// Runs `count` calls one after another, each started from the previous one's completion
    /// (or until the first failure, with `stopOnFailure`).
    final class Chain: @unchecked Sendable {  // mutable state is only touched on the connection's event loop
        let connection: GRPCConnection
        let path: String
        let request: ByteBuffer
        let stopOnFailure: Bool
        private var remaining = 0
        private var completed: [Completed] = []
        private var continuation: CheckedContinuation<[Completed], Never>?

        init(connection: GRPCConnection, path: String, request: ByteBuffer, stopOnFailure: Bool = false) {
            self.connection = connection
            self.path = path
            self.request = request
            self.stopOnFailure = stopOnFailure
        }

        func run(count: Int) async -> [Completed] {
            await withCheckedContinuation { continuation in
                connection.eventLoop.execute {
                    self.continuation = continuation
                    self.remaining = count
                    self.next()
                }
            }
        }

        private func next() {
            connection.startUnary(path, framedRequest: request) { result in
                self.completed.append(Completed(result: result, onLoop: self.connection.eventLoop.inEventLoop))
                self.remaining -= 1
                if self.stopOnFailure, result.status.code != .ok { self.remaining = 0 }
                if self.remaining > 0 {
                    self.next()
                } else {
                    self.continuation?.resume(returning: self.completed)
                }
            }
        }
    }

    final class RecordedStatus: Sendable {
        let status = Mutex<StatusCode?>(nil)
    }

    /// One call started off the loop; `started` sees the call before it completes.
    static func outcome(
        _ connection: GRPCConnection, _ path: String, _ request: ByteBuffer, metadata: Metadata = [:], timeout: Duration? = nil,
        started: (ClientCall) async -> Void = { _ in }
    ) async -> Completed {
        let (stream, continuation) = AsyncStream.makeStream(of: Completed.self)
        let call = connection.startUnary(path, framedRequest: request, metadata: metadata, timeout: timeout) { result in
            continuation.yield(Completed(result: result, onLoop: connection.eventLoop.inEventLoop))
            continuation.finish()
        }
        await started(call)
        var iterator = stream.makeAsyncIterator()
        return await iterator.next()!
    }

    @Test("calls chained from their completions share one request buffer and all succeed", arguments: [1, 8])
    func chained(chains: Int) async throws {
        try await TestServer.with({ $0.maxConcurrentStreams = 4 }) { server in
            try await server.withConnection { connection in
                let sent = payload(40)
                let request = Self.framed(Bench_V1_EchoRequest(payload: sent))
                let results = await withTaskGroup(of: [Completed].self) { group in
                    for _ in 0..<chains {
                        group.addTask { await Chain(connection: connection, path: Self.echo, request: request).run(count: 100) }
                    }
                    var all: [Completed] = []
                    for await chain in group { all += chain }
                    return all
                }
                #expect(results.count == chains * 100)
                #expect(results.allSatisfy { $0.onLoop })
                #expect(results.allSatisfy { $0.result.status.code == .ok })
                let echoed = results.compactMap { $0.result.message.flatMap { try? Bench_V1_EchoResponse(protobuf: $0) } }
                #expect(echoed.count == results.count && echoed.allSatisfy { $0.payload == sent })
                #expect(request == Self.framed(Bench_V1_EchoRequest(payload: sent)))  // never written to
                #expect(await eventually { connection.activeStreams == 0 })
            }
        }
    }

    @Test("metadata round trip: initial metadata and trailers reach the result")
    func metadata() async throws {
        try await TestServer.with { server in
            try await server.withConnection { connection in
                let binary: [UInt8] = [0, 1, 2, 0xFE, 0xFF]
                let metadata: Metadata = ["x-grpc-test-echo-initial": "hello, world", "x-grpc-test-echo-trailing-bin": .binary(binary)]
                let before = NIODeadline.now()
                let done = await Self.outcome(connection, Self.echo, Self.framed(Bench_V1_EchoRequest(payload: [1])), metadata: metadata)
                let after = NIODeadline.now()
                #expect(done.onLoop)
                // Stamped when the request's HEADERS frame went to the socket.
                #expect(done.result.requestSentAt.map { before <= $0 && $0 <= after } == true)
                #expect(done.result.status.code == .ok)
                #expect(done.result.initialMetadata["x-grpc-test-echo-initial"] == "hello, world")
                #expect(done.result.status.trailers.binary("x-grpc-test-echo-trailing-bin") == binary)
            }
        }
    }

    @Test("failures complete with their status: unknown method, deadline, cancellation")
    func failures() async throws {
        try await TestServer.with { server in
            try await server.withConnection { connection in
                let unknown = await Self.outcome(connection, "/bench.v1.Echo/Nope", Self.framed(RawMessage([1])))
                #expect(unknown.result.status.code == .unimplemented)
                #expect(unknown.result.message == nil)

                // The server's deadline (grpc-timeout sent as-is, no client timer): the call always
                // reaches the handler, whatever the machine's load, and the handler is cancelled.
                let late = await Self.outcome(
                    connection, "/test.Probe/Hang", Self.framed(RawMessage(Array("callback-deadline".utf8))),
                    metadata: ["grpc-timeout": "200m"])
                #expect(late.onLoop)
                #expect(late.result.status.code == .deadlineExceeded)
                #expect(await eventually { server.probe.events("callback-deadline") == [.started, .cancelled] })

                // The client's own timer: on a starved loop it may fire before the request is
                // written, and then the server never sees the call; if it did, its handler is cancelled.
                let timedOut = await Self.outcome(
                    connection, "/test.Probe/Hang", Self.framed(RawMessage(Array("callback-timer".utf8))), timeout: .milliseconds(200))
                #expect(timedOut.onLoop)
                #expect(timedOut.result.status.code == .deadlineExceeded)
                #expect(await eventually { [[], [.started, .cancelled]].contains(server.probe.events("callback-timer")) })

                let cancelled = await Self.outcome(connection, "/test.Probe/Hang", Self.framed(RawMessage(Array("callback-cancel".utf8)))) {
                    call in
                    #expect(await eventually { server.probe.events("callback-cancel") == [.started] })
                    call.cancel()
                }
                #expect(cancelled.result.status.code == .cancelled)
                #expect(await eventually { server.probe.events("callback-cancel") == [.started, .cancelled] })
                #expect(await eventually { connection.activeStreams == 0 })
            }
        }
    }

    @Test("GOAWAY mid-chain: calls in flight finish OK, the next ones fail UNAVAILABLE, none hangs")
    func goAway() async throws {
        let server = try await TestServer.start()
        let connection = try await GRPCConnection.connect(server.clientConfiguration(), group: MultiThreadedEventLoopGroup.singleton)
        let request = Self.framed(Bench_V1_EchoRequest(payload: payload(8)))
        async let chains = withTaskGroup(of: [Completed].self) { group in
            for _ in 0..<4 {
                group.addTask {
                    await Chain(connection: connection, path: Self.echo, request: request, stopOnFailure: true).run(count: 10_000_000)
                }
            }
            var all: [[Completed]] = []
            for await chain in group { all.append(chain) }
            return all
        }
        try await Task.sleep(for: .milliseconds(100))
        await server.server.shutdown()
        let results = await chains
        #expect(results.count == 4)
        for chain in results {
            #expect(chain.dropLast().allSatisfy { $0.result.status.code == .ok })
            #expect(chain.last?.result.status.code == .unavailable)
            #expect(chain.allSatisfy { $0.onLoop })
        }
        #expect(!connection.isAcceptingCalls)
        await connection.close()
    }

    @Test("on a closed connection a call completes UNAVAILABLE, before startUnary returns on the loop")
    func closedConnection() async throws {
        try await TestServer.with { server in
            let connection = try await GRPCConnection.connect(server.clientConfiguration(), group: MultiThreadedEventLoopGroup.singleton)
            await connection.close()
            let request = Self.framed(RawMessage([1]))
            let offLoop = await Self.outcome(connection, Self.echo, request)
            #expect(offLoop.onLoop)
            #expect(offLoop.result.status.code == .unavailable)

            let recorded = RecordedStatus()
            let inline = try await connection.eventLoop.submit {
                connection.startUnary(Self.echo, framedRequest: request) { result in
                    recorded.status.withLock { $0 = result.status.code }
                }
                return recorded.status.withLock { $0 }
            }.get()
            #expect(inline == .unavailable)
        }
    }
}
