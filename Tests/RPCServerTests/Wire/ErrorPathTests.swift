import Codec
import GRPCClient
import NIOCore
import Testing

/// Statuses for what goes wrong: deadlines, cancellation, limits, malformed input, unknown
/// methods, wrong content types.
@Suite struct ErrorPathTests {
    static let echo = "/bench.v1.Echo/Echo"

    static func status(_ body: () async throws -> Void) async -> CallStatus? {
        do {
            try await body()
            return nil
        } catch let error as CallError {
            return error.status
        } catch {
            Issue.record("unexpected error \(error)")
            return nil
        }
    }

    @Test func deadlineExceededCancelsTheHandler() async throws {
        try await TestServer.with { server, connection in
            let status = await Self.status {
                _ = try await connection.unary(
                    ProbeService.hangPath, Bench_V1_EchoRequest(), as: Bench_V1_EchoResponse.self, timeout: .milliseconds(200))
            }
            #expect(status?.code == .deadlineExceeded)
            #expect(await ProbeService.wait(until: 1) { server.probe.cancelled.load(ordering: .relaxed) })
        }
    }

    @Test func serverEnforcesTheDeadlineItReceives() async throws {
        // A raw call: the client sends grpc-timeout but keeps no timer of its own.
        try await TestServer.with { _, connection in
            var metadata = Metadata()
            metadata.add("x-tally-echo-delay-ms", "2000")
            metadata.add("grpc-timeout", "150m")
            let call = connection.makeCall(Self.echo, metadata: metadata)
            try await call.send(Bench_V1_EchoRequest(payload: [1]))
            try await call.finishSending()
            #expect(await call.status().code == .deadlineExceeded)
        }
    }

    @Test func clientCancellationCancelsTheHandler() async throws {
        try await TestServer.with { server, connection in
            let call = connection.makeCall(ProbeService.hangPath)
            try await call.send(Bench_V1_EchoRequest())
            try await call.finishSending()
            #expect(await ProbeService.wait(until: 1) { server.probe.started.load(ordering: .relaxed) })
            call.cancel()
            #expect(await call.status().code == .cancelled)
            #expect(await ProbeService.wait(until: 1) { server.probe.cancelled.load(ordering: .relaxed) })
            // The connection keeps serving.
            let response = try await connection.unary(Self.echo, Bench_V1_EchoRequest(payload: [9]), as: Bench_V1_EchoResponse.self)
            #expect(response.message.payload == [9])
        }
    }

    @Test func oversizeRequestIsResourceExhausted() async throws {
        try await TestServer.with { _, connection in
            let status = await Self.status {
                _ = try await connection.unary(
                    Self.echo, Bench_V1_EchoRequest(payload: [UInt8](repeating: 1, count: 4 * 1024 * 1024 + 1)),
                    as: Bench_V1_EchoResponse.self)
            }
            #expect(status?.code == .resourceExhausted)
            #expect(status?.message.contains("4194") == true)
        }
    }

    @Test func configuredLimitIsEnforced() async throws {
        try await TestServer.with({ $0.maxReceiveMessageSize = 1000 }) { _, connection in
            let status = await Self.status {
                _ = try await connection.unary(Self.echo, Bench_V1_EchoRequest(payload: [UInt8](repeating: 1, count: 2000)), as: Bench_V1_EchoResponse.self)
            }
            #expect(status?.code == .resourceExhausted)
            _ = try await connection.unary(Self.echo, Bench_V1_EchoRequest(payload: [UInt8](repeating: 1, count: 900)), as: Bench_V1_EchoResponse.self)
        }
    }

    @Test func oversizeResponseForTheClientIsResourceExhausted() async throws {
        let server = try await TestServer.start()
        let connection = try await server.connect { $0.maxReceiveMessageSize = 1000 }
        let status = await Self.status {
            _ = try await connection.unary(Self.echo, Bench_V1_EchoRequest(payload: [UInt8](repeating: 2, count: 5000)), as: Bench_V1_EchoResponse.self)
        }
        #expect(status?.code == .resourceExhausted)
        await connection.close()
        await server.server.shutdown()
    }

    @Test func malformedProtobufIsInternal() async throws {
        // Field 1 claims 16 bytes, the message ends after 1 (gRPC: a request that does not
        // parse is INTERNAL).
        try await TestServer.with { _, connection in
            let call = connection.makeCall(Self.echo)
            try await call.sendRaw([0x0A, 0x10, 0x01])
            try await call.finishSending()
            let status = await call.status()
            #expect(status.code == .internalError)
            #expect(status.message.contains("bench.v1.EchoRequest"))
        }
    }

    @Test func compressedFlagWithoutEncodingIsInternal() async throws {
        try await TestServer.with { _, connection in
            let call = connection.makeCall(Self.echo)
            try await call.sendRaw([1, 0, 0, 0, 2, 0x0A, 0x00], framed: true)
            try await call.finishSending()
            #expect(await call.status().code == .internalError)
        }
    }

    @Test func truncatedFrameIsInternal() async throws {
        try await TestServer.with { _, connection in
            let call = connection.makeCall(Self.echo)
            try await call.sendRaw([0, 0, 0, 0, 10, 0x0A, 0x02], framed: true)
            try await call.finishSending()
            #expect(await call.status().code == .internalError)
        }
    }

    @Test(arguments: ["/bench.v1.Echo/Nope", "/no.such.Service/Method", "/bench.v1.Echo", "/"])
    func unknownMethodsAreUnimplemented(path: String) async throws {
        try await TestServer.with { _, connection in
            let status = await Self.status {
                _ = try await connection.unary(path, Bench_V1_EchoRequest(), as: Bench_V1_EchoResponse.self)
            }
            #expect(status?.code == .unimplemented)
        }
    }

    @Test(arguments: ["application/json", "text/plain", "application/grpc-web"])
    func nonGRPCContentTypeIs415(contentType: String) async throws {
        try await TestServer.with { _, connection in
            let call = connection.makeCall(Self.echo, contentType: contentType)
            try await call.send(Bench_V1_EchoRequest())
            try await call.finishSending()
            let status = await call.status()
            #expect(call.httpStatus == 415)
            #expect(status.code != .ok)
        }
    }

    @Test func applicationGRPCProtoIsAccepted() async throws {
        try await TestServer.with { _, connection in
            let call = connection.makeCall(Self.echo, contentType: "application/grpc+proto")
            try await call.send(Bench_V1_EchoRequest(payload: [5]))
            try await call.finishSending()
            #expect(await call.status().code == .ok)
        }
    }

    @Test func handlerErrorsKeepTheirStatusAndMessage() async throws {
        try await TestServer.with { _, connection in
            let call = connection.makeCall("/bench.v1.Echo/Expand")
            try await call.send(Bench_V1_EchoRequest(payload: [], repeat: -1))
            try await call.finishSending()
            let status = await call.status()
            #expect(status.code == .invalidArgument)
            #expect(status.message == "repeat must be between 0 and 100000, got -1")
        }
    }
}
