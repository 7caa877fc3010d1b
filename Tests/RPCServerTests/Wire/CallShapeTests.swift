import Codec
import GRPCClient
import Testing

/// Every call shape over the wire against an in-process Tally server, through GRPCClient.
@Suite("Wire: call shapes")
struct CallShapeTests {
    static let echo = "/bench.v1.Echo/Echo"
    static let echoStream = "/bench.v1.Echo/EchoStream"
    static let collect = "/bench.v1.Echo/Collect"
    static let expand = "/bench.v1.Echo/Expand"

    @Test("unary echoes the payload", arguments: [0, 1, 1000, 300_000, 3 * 1024 * 1024])
    func unary(size: Int) async throws {
        try await TestServer.with { server in
            try await server.withConnection { connection in
                let sent = payload(size)
                let response = try await connection.unary(
                    Self.echo, Bench_V1_EchoRequest(payload: sent), as: Bench_V1_EchoResponse.self)
                #expect(response.message.payload == sent)
                #expect(connection.activeStreams == 0)
            }
        }
    }

    @Test("client streaming concatenates the requests", arguments: [0, 1, 500])
    func clientStreaming(count: Int) async throws {
        try await TestServer.with { server in
            try await server.withConnection { connection in
                let call = try connection.makeCall(Self.collect)
                var expected: [UInt8] = []
                for index in 0..<count {
                    let part = payload(17, seed: index)
                    expected += part
                    try await call.send(Bench_V1_EchoRequest(payload: part))
                }
                try await call.finishSending()
                var responses: [Bench_V1_EchoResponse] = []
                for try await response in call.messages(Bench_V1_EchoResponse.self) { responses.append(response) }
                #expect(responses.map(\.payload) == [expected])
                #expect(await call.status().code == .ok)
            }
        }
    }

    @Test("server streaming sends repeat copies", arguments: [0, 1, 2000])
    func serverStreaming(count: Int32) async throws {
        try await TestServer.with { server in
            try await server.withConnection { connection in
                let call = try connection.makeCall(Self.expand)
                let part = payload(100)
                try await call.send(Bench_V1_EchoRequest(payload: part, repeat: count))
                try await call.finishSending()
                var received = 0
                for try await response in call.messages(Bench_V1_EchoResponse.self) {
                    #expect(response.payload == part)
                    received += 1
                }
                #expect(received == Int(count))
                #expect(await call.status() == .ok)
            }
        }
    }

    @Test("server streaming beyond every window completes as the reader returns credit")
    func serverStreamingPastWindows() async throws {
        try await TestServer.with { server in
            // 48 x 512 KiB = 24 MiB: more than the 1 MiB stream and 16 MiB connection windows.
            try await server.withConnection { connection in
                let call = try connection.makeCall(Self.expand)
                let part = payload(512 * 1024)
                try await call.send(Bench_V1_EchoRequest(payload: part, repeat: 48))
                try await call.finishSending()
                var received = 0
                for try await response in call.responses {
                    #expect(response.count == part.count + 4)  // field tag and 3-byte length
                    received += 1
                    if received % 8 == 0 { try await Task.sleep(for: .milliseconds(5)) }  // a slow reader
                }
                #expect(received == 48)
                #expect(await call.status().code == .ok)
            }
        }
    }

    @Test("bidi streaming: ping-pong and pipelined", arguments: [0, 1, 300])
    func bidi(count: Int) async throws {
        try await TestServer.with { server in
            try await server.withConnection { connection in
                // Ping-pong: one request, wait for its response.
                let call = try connection.makeCall(Self.echoStream)
                var iterator = call.messages(Bench_V1_EchoResponse.self).makeAsyncIterator()
                for index in 0..<count {
                    let part = payload(10, seed: index)
                    try await call.send(Bench_V1_EchoRequest(payload: part))
                    let response = try await iterator.next()
                    #expect(response?.payload == part)
                }
                try await call.finishSending()
                #expect(try await iterator.next() == nil)
                #expect(await call.status().code == .ok)

                // Pipelined: all requests, then all responses.
                let pipelined = try connection.makeCall(Self.echoStream)
                for index in 0..<count { try await pipelined.send(Bench_V1_EchoRequest(payload: payload(10, seed: index))) }
                try await pipelined.finishSending()
                var received: [[UInt8]] = []
                for try await response in pipelined.messages(Bench_V1_EchoResponse.self) { received.append(response.payload) }
                #expect(received == (0..<count).map { payload(10, seed: $0) })
            }
        }
    }

    @Test("bidi streaming of 20 MiB each way, sending while reading")
    func bidiBulk() async throws {
        try await TestServer.with { server in
            try await server.withConnection { connection in
                let call = try connection.makeCall(Self.echoStream)
                let part = payload(256 * 1024)
                let messages = 80
                async let sender: Void = {
                    for _ in 0..<messages { try await call.send(Bench_V1_EchoRequest(payload: part)) }
                    try await call.finishSending()
                }()
                var received = 0
                for try await response in call.messages(Bench_V1_EchoResponse.self) {
                    #expect(response.payload.count == part.count)
                    received += 1
                }
                try await sender
                #expect(received == messages)
                #expect(await call.status().code == .ok)
            }
        }
    }

    @Test("metadata round trip: ASCII initial, binary trailing, unary and streaming")
    func metadata() async throws {
        try await TestServer.with { server in
            try await server.withConnection { connection in
                let binary: [UInt8] = [0, 1, 2, 0xFE, 0xFF, 10, 13]
                let metadata: Metadata = ["x-grpc-test-echo-initial": "hello, world", "x-grpc-test-echo-trailing-bin": .binary(binary)]
                let response = try await connection.unary(
                    Self.echo, Bench_V1_EchoRequest(payload: [1]), as: Bench_V1_EchoResponse.self, metadata: metadata)
                #expect(response.initialMetadata["x-grpc-test-echo-initial"] == "hello, world")
                #expect(response.trailers.binary("x-grpc-test-echo-trailing-bin") == binary)

                let call = try connection.makeCall(Self.echoStream, metadata: metadata)
                try await call.send(Bench_V1_EchoRequest(payload: [2]))
                try await call.finishSending()
                #expect(try await call.initialMetadata()["x-grpc-test-echo-initial"] == "hello, world")
                for try await _ in call.responses {}
                let status = await call.status()
                #expect(status.code == .ok)
                #expect(status.trailers.binary("x-grpc-test-echo-trailing-bin") == binary)
            }
        }
    }

    @Test("gzip-compressed requests get gzip-compressed responses", arguments: [0, 100, 2 * 1024 * 1024])
    func gzip(size: Int) async throws {
        try await TestServer.with { server in
            try await server.withConnection { connection in
                let sent = [UInt8](repeating: 7, count: size / 2) + payload(size - size / 2)
                let call = try connection.makeCall(Self.echoStream, compression: true)
                try await call.send(Bench_V1_EchoRequest(payload: sent))
                try await call.send(Bench_V1_EchoRequest(payload: [42]))
                try await call.finishSending()
                let received = try await Array(call.messages(Bench_V1_EchoResponse.self))
                #expect(received.map(\.payload) == [sent, [42]])
                #expect(await call.status().code == .ok)
            }
        }
    }

    @Test("health Check answers SERVING, and NOT_FOUND for an unknown service")
    func healthCheck() async throws {
        try await TestServer.with { server in
            try await server.withConnection { connection in
                for service in ["", "bench.v1.Echo", "grpc.health.v1.Health"] {
                    var request = Grpc_Health_V1_HealthCheckRequest()
                    request.service = service
                    let response = try await connection.unary(
                        "/grpc.health.v1.Health/Check", request, as: Grpc_Health_V1_HealthCheckResponse.self)
                    #expect(response.message.status == .serving)
                }
                var unknown = Grpc_Health_V1_HealthCheckRequest()
                unknown.service = "no.such.Service"
                let error = await #expect(throws: CallError.self) {
                    try await connection.unary("/grpc.health.v1.Health/Check", unknown, as: Grpc_Health_V1_HealthCheckResponse.self)
                }
                #expect(error?.code == .notFound)
            }
        }
    }
}

extension Array {
    /// Collects an async sequence (test convenience).
    init<S: AsyncSequence>(_ sequence: S) async throws where S.Element == Element {
        self = []
        for try await element in sequence { append(element) }
    }
}
