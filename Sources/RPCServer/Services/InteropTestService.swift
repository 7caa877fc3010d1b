import Codec

/// `grpc.testing.TestService`: the server side of gRPC's standard interop test cases
/// (grpc/grpc `doc/interop-test-descriptions.md`), served with `--interop-test-service` so any
/// gRPC client's interop suite can run against Tally.
///
/// Served as the descriptions define it: payloads of zeros of the requested sizes, Echo Status
/// (`response_status` ends the call with that code and message), Echo Metadata,
/// CompressedRequest (`expect_compressed` refuses a plain request with INVALID_ARGUMENT) and
/// CompressedResponse (`response_compressed`, per message in streams), `interval_us` before each
/// response. `UnimplementedCall` and `CacheableUnaryCall` are not served: the first must answer
/// UNIMPLEMENTED, the second needs a caching proxy in front.
public struct InteropTestService: RPCService {
    /// The largest payload one response may ask for, and the most a HalfDuplexCall may hold
    /// back before answering: the server's own send limit.
    let maxResponseBytes: Int

    public init(maxResponseBytes: Int) {
        self.maxResponseBytes = maxResponseBytes
    }

    public var methods: [RPCMethod] {
        [
            .unary(Self.path("EmptyCall")) { (_: Grpc_Testing_Empty, context: ServerContext) in
                context.echoTestMetadata()
                return Grpc_Testing_Empty()
            },
            .unary(Self.path("UnaryCall")) { (request: Grpc_Testing_SimpleRequest, context: ServerContext) in
                context.echoTestMetadata()
                try Self.checkCompressed(request.expectCompressed, context, field: "expect_compressed")
                try Self.echoStatus(request.responseStatus)
                try Self.checkPayloadType(request.responseType)
                context.setResponseCompression(request.responseCompressed?.value ?? false)
                var response = Grpc_Testing_SimpleResponse()
                response.payload = try payload(size: request.responseSize, field: "response_size")
                return response
            },
            .serverStreaming(Self.path("StreamingOutputCall")) {
                (request: Grpc_Testing_StreamingOutputCallRequest, writer: ResponseWriter<Grpc_Testing_StreamingOutputCallResponse>,
                 context: ServerContext) in
                context.echoTestMetadata()
                try await respond(to: request, writer, context)
            },
            .clientStreaming(Self.path("StreamingInputCall")) {
                (requests: RequestStream<Grpc_Testing_StreamingInputCallRequest>, context: ServerContext) in
                context.echoTestMetadata()
                var total = 0
                for try await request in requests {
                    try Self.checkCompressed(request.expectCompressed, context, field: "expect_compressed")
                    total += request.payload?.body.count ?? 0
                }
                guard let aggregated = Int32(exactly: total) else {
                    throw RPCError(.outOfRange, "aggregated_payload_size: \(total) bytes do not fit an int32")
                }
                var response = Grpc_Testing_StreamingInputCallResponse()
                response.aggregatedPayloadSize = aggregated
                return response
            },
            .bidirectionalStreaming(Self.path("FullDuplexCall")) {
                (requests: RequestStream<Grpc_Testing_StreamingOutputCallRequest>,
                 writer: ResponseWriter<Grpc_Testing_StreamingOutputCallResponse>, context: ServerContext) in
                context.echoTestMetadata()
                for try await request in requests {
                    try await respond(to: request, writer, context)
                }
            },
            .bidirectionalStreaming(Self.path("HalfDuplexCall")) {
                (requests: RequestStream<Grpc_Testing_StreamingOutputCallRequest>,
                 writer: ResponseWriter<Grpc_Testing_StreamingOutputCallResponse>, context: ServerContext) in
                context.echoTestMetadata()
                var held: [Grpc_Testing_StreamingOutputCallRequest] = []
                var heldBytes = 0
                for try await request in requests {
                    heldBytes += request.responseParameters.reduce(0) { $0 + max(0, Int($1.size)) }
                    guard heldBytes <= maxResponseBytes else {
                        throw RPCError(
                            .resourceExhausted,
                            "HalfDuplexCall holds at most \(maxResponseBytes) bytes of responses until the client half-closes")
                    }
                    held.append(request)
                }
                for request in held {
                    try await respond(to: request, writer, context)
                }
            },
        ]
    }

    /// One response per `ResponseParameters`, each after its `interval_us`, then the
    /// request's `response_status` if it has one.
    private func respond(
        to request: Grpc_Testing_StreamingOutputCallRequest, _ writer: ResponseWriter<Grpc_Testing_StreamingOutputCallResponse>,
        _ context: ServerContext
    ) async throws {
        try Self.echoStatus(request.responseStatus)
        try Self.checkPayloadType(request.responseType)
        for (index, parameters) in request.responseParameters.enumerated() {
            if parameters.intervalUs > 0 {
                try await Task.sleep(for: .microseconds(parameters.intervalUs))
            }
            context.setResponseCompression(parameters.compressed?.value ?? false)
            var response = Grpc_Testing_StreamingOutputCallResponse()
            response.payload = try payload(size: parameters.size, field: "response_parameters[\(index)].size")
            try await writer.write(response)
        }
    }

    /// A COMPRESSABLE payload of `size` zero bytes.
    private func payload(size: Int32, field: String) throws(RPCError) -> Grpc_Testing_Payload {
        guard size >= 0 else { throw RPCError(.invalidArgument, "\(field) must not be negative, got \(size)") }
        guard size <= maxResponseBytes else {
            throw RPCError(.resourceExhausted, "\(field): \(size) bytes exceed the server's send limit of \(maxResponseBytes)")
        }
        var payload = Grpc_Testing_Payload()
        payload.type = .compressable
        payload.body = [UInt8](repeating: 0, count: Int(size))
        return payload
    }

    /// CompressedRequest: a request that asks to be checked must have arrived compressed.
    private static func checkCompressed(_ expect: Grpc_Testing_BoolValue?, _ context: ServerContext, field: String) throws(RPCError) {
        if expect?.value == true && !context.requestCompressed {
            throw RPCError(.invalidArgument, "\(field) is true but the request message was not compressed")
        }
    }

    /// Echo Status: a non-OK `response_status` ends the call with that code and message.
    private static func echoStatus(_ status: Grpc_Testing_EchoStatus?) throws(RPCError) {
        guard let status, status.code != 0 else { return }
        guard (1...16).contains(status.code) else {
            throw RPCError(.invalidArgument, "response_status.code must be a gRPC status code (0 to 16), got \(status.code)")
        }
        throw RPCError(StatusCode(rawValue: Int(status.code)), status.message)
    }

    private static func checkPayloadType(_ type: Grpc_Testing_PayloadType) throws(RPCError) {
        guard type == .compressable else {
            throw RPCError(.invalidArgument, "response_type \(type.rawValue) is not supported (only COMPRESSABLE)")
        }
    }

    private static func path(_ method: String) -> String {
        RPCMethod.path(service: "grpc.testing.TestService", method: method)
    }
}
