import Codec
import GRPCClient
import Testing

/// Calls that fail, and the status each failure must produce (gRPC's spec is the yardstick).
@Suite("Wire: failures and status mapping")
struct FailureTests {
    static let echo = "/bench.v1.Echo/Echo"

    /// Sends `bytes` as the whole request of an Echo call (framed as given) and returns the status.
    static func echoStatus(_ connection: GRPCConnection, raw bytes: [UInt8], framed: Bool) async throws -> CallStatus {
        let call = try connection.makeCall(echo)
        // The server may answer (and the send then fail) before the whole request is out.
        try? await call.sendRaw(bytes, framed: framed)
        try await call.finishSending()
        return await call.status()
    }

    @Test("a request that does not parse as protobuf is INTERNAL", arguments: [[0xFF, 0xFF, 0xFF], [0x0A, 0x10, 0x01]] as [[UInt8]])
    func malformedProtobuf(bytes: [UInt8]) async throws {
        try await TestServer.with { server in
            try await server.withConnection { connection in
                let status = try await Self.echoStatus(connection, raw: bytes, framed: false)
                #expect(status.code == .internalError)
                #expect(status.message.contains("unmarshalling request"), "\(status.message)")
                #expect(status.message.contains("bench.v1.EchoRequest"), "\(status.message)")
            }
        }
    }

    @Test(
        "malformed framing is INTERNAL with a clear message",
        arguments: [
            ([1, 0, 0, 0, 2, 0x0A, 0x00], "without a grpc-encoding"),  // compressed flag, no grpc-encoding
            ([0, 0, 0, 0, 10, 0x0A], "in the middle of a message"),  // truncated, then END_STREAM
            ([2, 0, 0, 0, 0], "compressed flag 2"),  // invalid flag
            ([0, 0, 0, 0, 0, 0, 0, 0, 0, 0], "more than one request message"),  // two messages for a unary call
            ([], "no request message"),  // no message at all
        ] as [([UInt8], String)])
    func malformedFraming(bytes: [UInt8], expected: String) async throws {
        try await TestServer.with { server in
            try await server.withConnection { connection in
                let status = try await Self.echoStatus(connection, raw: bytes, framed: true)
                #expect(status.code == .internalError)
                #expect(status.message.contains(expected), "\(status.message)")
                // The connection survives a broken call.
                let response = try await connection.unary(Self.echo, Bench_V1_EchoRequest(payload: [9]), as: Bench_V1_EchoResponse.self)
                #expect(response.message.payload == [9])
            }
        }
    }

    @Test("unknown methods and services are UNIMPLEMENTED")
    func unimplemented() async throws {
        try await TestServer.with { server in
            try await server.withConnection { connection in
                let request = Bench_V1_EchoRequest(payload: [1])
                let method = await #expect(throws: CallError.self) {
                    try await connection.unary("/bench.v1.Echo/Nope", request, as: Bench_V1_EchoResponse.self)
                }
                #expect(method?.code == .unimplemented)
                #expect(method?.status.message == "unknown method Nope for service bench.v1.Echo")
                let service = await #expect(throws: CallError.self) {
                    try await connection.unary("/no.such.Service/Echo", request, as: Bench_V1_EchoResponse.self)
                }
                #expect(service?.code == .unimplemented)
                #expect(service?.status.message == "unknown service no.such.Service")
            }
        }
    }

    @Test("a non-gRPC content-type gets HTTP 415, mapped to UNKNOWN")
    func badContentType() async throws {
        try await TestServer.with { server in
            try await server.withConnection { connection in
                let call = try connection.makeCall(Self.echo, contentType: "text/plain")
                try? await call.send(Bench_V1_EchoRequest(payload: [1]))  // may race the early answer
                try await call.finishSending()
                let status = await call.status()
                #expect(call.httpStatus == 415)
                #expect(status.code == .unknown)  // 415 is not in gRPC's HTTP mapping table
                #expect(status.message.contains("HTTP status 415"), "\(status.message)")
                #expect(status.message.contains("text/plain"), "\(status.message)")
            }
        }
    }

    @Test("a request message over the server's 4 MiB limit is RESOURCE_EXHAUSTED")
    func oversizeRequest() async throws {
        try await TestServer.with { server in
            try await server.withConnection { connection in
                let big = Bench_V1_EchoRequest(payload: payload(4 * 1024 * 1024 + 1))
                let unary = await #expect(throws: CallError.self) {
                    try await connection.unary(Self.echo, big, as: Bench_V1_EchoResponse.self)
                }
                #expect(unary?.code == .resourceExhausted)
                #expect(unary?.status.message.contains("larger than max") == true, "\(unary?.status.message ?? "")")

                // Streaming: the call ends while the client may still be sending.
                let call = try connection.makeCall("/bench.v1.Echo/EchoStream")
                try await call.send(Bench_V1_EchoRequest(payload: [1]))
                do {
                    try await call.send(big)
                    try await call.finishSending()
                } catch let error as CallError {
                    #expect(error.code == .resourceExhausted)  // sending stops once the status is in
                }
                #expect(await call.status().code == .resourceExhausted)
                let after = try await connection.unary(Self.echo, Bench_V1_EchoRequest(payload: [3]), as: Bench_V1_EchoResponse.self)
                #expect(after.message.payload == [3])
            }
        }
    }

    @Test("a response message over the client's limit is RESOURCE_EXHAUSTED, plain or gzip", arguments: [false, true])
    func oversizeResponse(compressed: Bool) async throws {
        try await TestServer.with { server in
            try await server.withConnection({ $0.maxReceiveMessageSize = 64 * 1024 }) { connection in
                let call = try connection.makeCall("/bench.v1.Echo/EchoStream", compression: compressed)
                try await call.send(Bench_V1_EchoRequest(payload: [UInt8](repeating: 0, count: 60 * 1024)))
                // The client may fail the call on the second response while still sending.
                try? await call.send(Bench_V1_EchoRequest(payload: [UInt8](repeating: 0, count: 100 * 1024)))
                try await call.finishSending()
                var received = 0
                let error = await #expect(throws: CallError.self) {
                    for try await _ in call.responses { received += 1 }
                }
                #expect(received == 1)
                #expect(error?.code == .resourceExhausted)
                #expect(error?.status.message.contains("larger than max") == true, "\(error?.status.message ?? "")")
                #expect(await call.status().code == .resourceExhausted)
                let after = try await connection.unary(Self.echo, Bench_V1_EchoRequest(payload: [4]), as: Bench_V1_EchoResponse.self)
                #expect(after.message.payload == [4])
                #expect(await eventually { connection.activeStreams == 0 })
            }
        }
    }

    @Test("a passed deadline is DEADLINE_EXCEEDED and cancels the server handler")
    func deadlineExceeded() async throws {
        try await TestServer.with { server in
            try await server.withConnection { connection in
                let slow = await #expect(throws: CallError.self) {
                    try await connection.unary(
                        Self.echo, Bench_V1_EchoRequest(payload: [1]), as: Bench_V1_EchoResponse.self,
                        metadata: ["x-tally-echo-delay-ms": "5000"], timeout: .milliseconds(200))
                }
                #expect(slow?.code == .deadlineExceeded)

                // Only the server's deadline (grpc-timeout sent as-is, no client timer), so the call
                // reaches the handler however loaded the machine is.
                let hang = await #expect(throws: CallError.self) {
                    try await connection.unary(
                        "/test.Probe/Hang", RawMessage(Array("deadline".utf8)), as: RawMessage.self,
                        metadata: ["grpc-timeout": "300m"])
                }
                #expect(hang?.code == .deadlineExceeded)
                #expect(await eventually { server.probe.events("deadline") == [.started, .cancelled] })

                // A client deadline: the local timer fires and resets the stream. On a starved
                // loop it may fire before the handler has the request, and such a call shows
                // nothing of the server; so the deadline doubles until a call's request came
                // back echoed before it fired (its handler was running), and that handler must
                // be cancelled.
                var timeout = Duration.milliseconds(100)
                for attempt in 1... {
                    let id = "stream-deadline-\(attempt)"
                    let call = try connection.makeCall("/test.Probe/HangStream", timeout: timeout)
                    try await call.sendRaw(Array(id.utf8))
                    var responses = call.responses.makeAsyncIterator()
                    let echoed = (try? await responses.next()) == Array(id.utf8)
                    #expect(await call.status().code == .deadlineExceeded)
                    if echoed {
                        #expect(await eventually { server.probe.events(id) == [.started, .cancelled] })
                        break
                    }
                    try #require(attempt < 12, "no call reached its handler before its deadline")
                    timeout *= 2
                }
            }
        }
    }

    @Test("a deadline wakes a handler waiting for a client that does not read")
    func deadlineWakesABlockedWriter() async throws {
        try await TestServer.with { server in
            try await server.withConnection { connection in
                // Only the server's deadline; the client sends the request and never reads, so
                // the stream's window fills and the handler waits in `write`. On a starved loop
                // the deadline may pass before the handler starts (then it never does): the
                // deadline doubles until a call's handler started, and that one must be woken.
                var milliseconds = 500
                for attempt in 1... {
                    let id = "flooded-\(attempt)"
                    let call = try connection.makeCall("/test.Probe/Flood", metadata: ["grpc-timeout": .string("\(milliseconds)m")])
                    try await call.sendRaw(Array(id.utf8))
                    try await call.finishSending()
                    if await eventually({ !server.probe.events(id).isEmpty }) {
                        #expect(await eventually { server.probe.events(id) == [.started, .cancelled] },
                                "the handler was left waiting for flow control after its deadline: \(server.probe.events(id))")
                        call.cancel()
                        break
                    }
                    call.cancel()
                    try #require(attempt < 6, "no call reached its handler before its deadline")
                    milliseconds *= 2
                }
            }
        }
    }

    @Test("the largest grpc-timeouts (beyond Int64 nanoseconds) are served, not trapped on", arguments: ["99999999H", "99999999M"])
    func hugeTimeout(value: String) async throws {
        try await TestServer.with { server in
            try await server.withConnection { connection in
                let response = try await connection.unary(
                    Self.echo, Bench_V1_EchoRequest(payload: [7]), as: Bench_V1_EchoResponse.self,
                    metadata: ["grpc-timeout": .string(value)])
                #expect(response.message.payload == [7])
            }
        }
    }

    @Test("client cancellation resets the stream and cancels the server handler")
    func clientCancellation() async throws {
        try await TestServer.with { server in
            try await server.withConnection { connection in
                // Explicit cancel() of a unary-shaped call.
                let call = try connection.makeCall("/test.Probe/Hang")
                try await call.sendRaw(Array("explicit".utf8))
                try await call.finishSending()
                #expect(await eventually { server.probe.events("explicit") == [.started] })
                call.cancel()
                let status = await call.status()
                #expect(status.code == .cancelled)
                #expect(await eventually { server.probe.events("explicit") == [.started, .cancelled] })

                // Cancelling the task awaiting a unary call.
                let task = Task {
                    try await connection.unary("/test.Probe/Hang", RawMessage(Array("task".utf8)), as: RawMessage.self)
                }
                #expect(await eventually { server.probe.events("task") == [.started] })
                task.cancel()
                let error = await #expect(throws: CallError.self) { try await task.value }
                #expect(error?.code == .cancelled)
                #expect(await eventually { server.probe.events("task") == [.started, .cancelled] })

                // A bidi stream, mid-stream.
                let stream = try connection.makeCall("/test.Probe/HangStream")
                try await stream.sendRaw(Array("bidi".utf8))
                var responses = stream.responses.makeAsyncIterator()
                #expect(try await responses.next() == Array("bidi".utf8))
                stream.cancel()
                #expect(await stream.status().code == .cancelled)
                await #expect(throws: CallError.self) { _ = try await responses.next() }
                await #expect(throws: CallError.self) { try await stream.sendRaw([1]) }
                #expect(await eventually { server.probe.events("bidi") == [.started, .cancelled] })
                #expect(await eventually { connection.activeStreams == 0 })
            }
        }
    }
}
