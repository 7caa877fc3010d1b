import Codec
import RPCServer

/// bench.v1.Echo and grpc.health.v1.Health/Watch as the real services answer them (and a
/// Health/Check that hangs), counting
/// every call and message, so a test can compare tally-load's report with what the server saw.
struct CountingServices: RPCService {
    let counts: ServerCounts

    var methods: [RPCMethod] {
        [
            .unary("/bench.v1.Echo/Echo") { [counts] (request: Bench_V1_EchoRequest, _: ServerContext) in
                counts.call("Echo")
                counts.request("Echo")
                counts.response("Echo")
                return Self.response(request.payload)
            },
            .bidirectionalStreaming("/bench.v1.Echo/EchoStream") {
                [counts] (requests: RequestStream<Bench_V1_EchoRequest>, writer: ResponseWriter<Bench_V1_EchoResponse>, _: ServerContext) in
                counts.call("EchoStream")
                for try await request in requests {
                    counts.request("EchoStream")
                    try await writer.write(Self.response(request.payload))
                    counts.response("EchoStream")
                }
            },
            .clientStreaming("/bench.v1.Echo/Collect") { [counts] (requests: RequestStream<Bench_V1_EchoRequest>, _: ServerContext) in
                counts.call("Collect")
                var payload: [UInt8] = []
                for try await request in requests {
                    counts.request("Collect")
                    payload += request.payload
                }
                counts.response("Collect")
                return Self.response(payload)
            },
            .serverStreaming("/bench.v1.Echo/Expand") {
                [counts] (request: Bench_V1_EchoRequest, writer: ResponseWriter<Bench_V1_EchoResponse>, _: ServerContext) in
                counts.call("Expand")
                counts.request("Expand")
                for _ in 0..<request.repeat {
                    try await writer.write(Self.response(request.payload))
                    counts.response("Expand")
                }
            },
            // Answers only after a minute: a unary call that meets its deadline first.
            .unary("/grpc.health.v1.Health/Check") { [counts] (_: Grpc_Health_V1_HealthCheckRequest, _: ServerContext) in
                counts.call("Check")
                try await Task.sleep(for: .seconds(60))
                return Grpc_Health_V1_HealthCheckResponse()
            },
            // Like Health/Watch: the current status, then nothing until the client cancels.
            .serverStreaming("/grpc.health.v1.Health/Watch") {
                [counts] (_: Grpc_Health_V1_HealthCheckRequest, writer: ResponseWriter<Grpc_Health_V1_HealthCheckResponse>, _: ServerContext) in
                counts.call("Watch")
                counts.request("Watch")
                var status = Grpc_Health_V1_HealthCheckResponse()
                status.status = .serving
                try await writer.write(status)
                counts.response("Watch")
                try await Task.sleep(for: .seconds(60))
            },
        ]
    }

    private static func response(_ payload: [UInt8]) -> Bench_V1_EchoResponse {
        var response = Bench_V1_EchoResponse()
        response.payload = payload
        return response
    }
}
