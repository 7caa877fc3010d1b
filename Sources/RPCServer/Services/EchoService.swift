import Codec

/// `bench.v1.Echo`: echoes the payload. The benchmark method, served through the same
/// dispatch path as every product RPC (no fast path of its own).
///
/// Like gRPC's interop test server it echoes `x-grpc-test-echo-initial` as initial metadata
/// and `x-grpc-test-echo-trailing-bin` as trailing metadata, and honours
/// `x-tally-echo-delay-ms` (sleeps first), so tests can check metadata, deadlines and
/// cancellation against a real method.
public struct EchoService: RPCService {
    public init() {}

    public var methods: [RPCMethod] {
        [
            .unary(RPCMethod.path(service: "bench.v1.Echo", method: "Echo")) {
                (request: Bench_V1_EchoRequest, context: ServerContext) in
                if let echo = context.metadata["x-grpc-test-echo-initial"] {
                    context.setInitialMetadata(Metadata(["x-grpc-test-echo-initial": echo]))
                }
                if let echo = context.metadata.binary("x-grpc-test-echo-trailing-bin") {
                    var trailing = Metadata()
                    trailing.add("x-grpc-test-echo-trailing-bin", binary: echo)
                    context.addTrailingMetadata(trailing)
                }
                if let delay = context.metadata["x-tally-echo-delay-ms"].flatMap(Int.init), delay > 0 {
                    try await Task.sleep(for: .milliseconds(min(delay, 60_000)))
                }
                var response = Bench_V1_EchoResponse()
                response.payload = request.payload
                return response
            }
        ]
    }
}
