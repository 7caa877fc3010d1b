import Codec

/// `bench.v1.Echo`: the benchmark service, served through the same dispatch path as every
/// product RPC (no fast path of its own), one method per call shape.
///
/// Like gRPC's interop test server, Echo echoes `x-grpc-test-echo-initial` as initial
/// metadata and `x-grpc-test-echo-trailing-bin` as trailing metadata, and it honours
/// `x-tally-echo-delay-ms` (sleeps first), so tests can check metadata, deadlines,
/// cancellation and graceful shutdown against a real method.
public struct EchoService: RPCService {
    /// Upper bound of Expand's `repeat`.
    static let maxRepeat = 100_000

    public init() {}

    public var methods: [RPCMethod] {
        [
            .unary(Self.path("Echo")) { (request: Bench_V1_EchoRequest, context: ServerContext) in
                context.echoTestMetadata()
                if let delay = context.metadata["x-tally-echo-delay-ms"].flatMap(Int.init), delay > 0 {
                    try await Task.sleep(for: .milliseconds(min(delay, 60_000)))
                }
                return Self.response(request.payload)
            },
            .bidirectionalStreaming(Self.path("EchoStream")) {
                (requests: RequestStream<Bench_V1_EchoRequest>, writer: ResponseWriter<Bench_V1_EchoResponse>, context: ServerContext) in
                context.echoTestMetadata()
                for try await request in requests {
                    try await writer.write(Self.response(request.payload))
                }
            },
            .clientStreaming(Self.path("Collect")) { (requests: RequestStream<Bench_V1_EchoRequest>, context: ServerContext) in
                context.echoTestMetadata()
                var payload: [UInt8] = []
                for try await request in requests {
                    payload += request.payload
                }
                return Self.response(payload)
            },
            .serverStreaming(Self.path("Expand")) {
                (request: Bench_V1_EchoRequest, writer: ResponseWriter<Bench_V1_EchoResponse>, context: ServerContext) in
                guard (0...Self.maxRepeat).contains(Int(request.repeat)) else {
                    throw RPCError(.invalidArgument, "repeat must be between 0 and \(Self.maxRepeat), got \(request.repeat)")
                }
                context.echoTestMetadata()
                let response = Self.response(request.payload)
                for _ in 0..<request.repeat {
                    try await writer.write(response)
                }
            },
        ]
    }

    private static func path(_ method: String) -> String {
        RPCMethod.path(service: "bench.v1.Echo", method: method)
    }

    private static func response(_ payload: [UInt8]) -> Bench_V1_EchoResponse {
        var response = Bench_V1_EchoResponse()
        response.payload = payload
        return response
    }
}
