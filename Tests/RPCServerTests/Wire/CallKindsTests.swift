import Codec
import GRPCClient
import NIOCore
import Testing

/// Every RPC kind over the wire, with Tally's own nghttp2 client.
@Suite struct CallKindsTests {
    static let echo = "/bench.v1.Echo/Echo"
    static let echoStream = "/bench.v1.Echo/EchoStream"
    static let collect = "/bench.v1.Echo/Collect"
    static let expand = "/bench.v1.Echo/Expand"

    @Test(arguments: [0, 1, 32, 70_000, 1 << 20])
    func unary(size: Int) async throws {
        try await TestServer.with { _, connection in
            let payload = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31) }
            let response = try await connection.unary(Self.echo, Bench_V1_EchoRequest(payload: payload), as: Bench_V1_EchoResponse.self)
            #expect(response.message.payload == payload)
        }
    }

    @Test func clientStreaming() async throws {
        try await TestServer.with { _, connection in
            let call = connection.makeCall(Self.collect)
            for index in 0..<500 { try await call.send(Bench_V1_EchoRequest(payload: [UInt8(index % 256)])) }
            try await call.finishSending()
            var received: [Bench_V1_EchoResponse] = []
            for try await message in call.messages(Bench_V1_EchoResponse.self) { received.append(message) }
            #expect(await call.status().code == .ok)
            #expect(received.count == 1)
            #expect(received.first?.payload == (0..<500).map { UInt8($0 % 256) })
        }
    }

    @Test func clientStreamingWithNoMessages() async throws {
        try await TestServer.with { _, connection in
            let call = connection.makeCall(Self.collect)
            try await call.finishSending()
            let messages = try await Array(call.messages(Bench_V1_EchoResponse.self))
            #expect(await call.status().code == .ok)
            #expect(messages.map(\.payload) == [[]])
        }
    }

    @Test(arguments: [0, 1, 10_000])
    func serverStreaming(count: Int32) async throws {
        try await TestServer.with { _, connection in
            let call = connection.makeCall(Self.expand)
            try await call.send(Bench_V1_EchoRequest(payload: [7, 7, 7], repeat: count))
            try await call.finishSending()
            var received = 0
            for try await message in call.messages(Bench_V1_EchoResponse.self) {
                #expect(message.payload == [7, 7, 7])
                received += 1
            }
            #expect(await call.status().code == .ok)
            #expect(received == Int(count))
        }
    }

    @Test func bidirectionalStreamingInLockstep() async throws {
        try await TestServer.with { _, connection in
            let call = connection.makeCall(Self.echoStream)
            var iterator = call.messages(Bench_V1_EchoResponse.self).makeAsyncIterator()
            for index in 0..<200 {
                let payload = Array("message \(index)".utf8)
                try await call.send(Bench_V1_EchoRequest(payload: payload))
                let echoed = try await iterator.next()
                #expect(echoed?.payload == payload)
            }
            try await call.finishSending()
            #expect(try await iterator.next() == nil)
            #expect(await call.status().code == .ok)
        }
    }

    @Test func bidirectionalStreamingFloodThenRead() async throws {
        // More than the stream windows hold: flow control must keep both sides moving.
        try await TestServer.with { _, connection in
            let call = connection.makeCall(Self.echoStream)
            let payload = [UInt8](repeating: 0xAB, count: 16 * 1024)
            async let sent: Void = {
                for _ in 0..<400 { try await call.send(Bench_V1_EchoRequest(payload: payload)) }
                try await call.finishSending()
            }()
            var received = 0
            for try await message in call.messages(Bench_V1_EchoResponse.self) {
                #expect(message.payload.count == payload.count)
                received += 1
            }
            try await sent
            #expect(received == 400)
            #expect(await call.status().code == .ok)
        }
    }

    @Test func metadataRoundTrip() async throws {
        try await TestServer.with { _, connection in
            var metadata = Metadata()
            metadata.add("x-grpc-test-echo-initial", "hello, world")
            metadata.add("x-grpc-test-echo-trailing-bin", binary: [0, 1, 2, 0xFF, 0xFE])
            let response = try await connection.unary(
                Self.echo, Bench_V1_EchoRequest(payload: [1]), as: Bench_V1_EchoResponse.self, metadata: metadata)
            #expect(response.initialMetadata["x-grpc-test-echo-initial"] == "hello, world")
            #expect(response.trailers.binary("x-grpc-test-echo-trailing-bin") == [0, 1, 2, 0xFF, 0xFE])
        }
    }

    @Test func gzipRequestAndResponse() async throws {
        try await TestServer.with { _, connection in
            let payload = [UInt8](repeating: 0x41, count: 100_000)
            let response = try await connection.unary(
                Self.echo, Bench_V1_EchoRequest(payload: payload), as: Bench_V1_EchoResponse.self, compression: .gzip)
            #expect(response.message.payload == payload)
        }
    }

    @Test func manyConcurrentCallsOnOneConnection() async throws {
        // Beyond the server's stream limit: nghttp2 queues the rest until streams free up.
        try await TestServer.with({ $0.maxConcurrentStreams = 10 }) { _, connection in
            try await withThrowingTaskGroup(of: Bool.self) { group in
                for index in 0..<2000 {
                    group.addTask {
                        let payload = Array("call \(index)".utf8)
                        let response = try await connection.unary(Self.echo, Bench_V1_EchoRequest(payload: payload), as: Bench_V1_EchoResponse.self)
                        return response.message.payload == payload
                    }
                }
                var ok = 0
                for try await matched in group where matched { ok += 1 }
                #expect(ok == 2000)
            }
        }
    }
}

