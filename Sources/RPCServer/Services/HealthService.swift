import Codec

/// `grpc.health.v1.Health`: Check and Watch over the status board.
public struct HealthService: RPCService {
    public let board: HealthStatusBoard
    private static let service = "grpc.health.v1.Health"

    public init(board: HealthStatusBoard) {
        self.board = board
    }

    public var methods: [RPCMethod] {
        [
            .unary(RPCMethod.path(service: Self.service, method: "Check")) {
                [board] (request: Grpc_Health_V1_HealthCheckRequest, _: ServerContext) in
                guard let status = board.status(of: request.service) else {
                    throw RPCError(.notFound, "unknown service \(request.service)")
                }
                var response = Grpc_Health_V1_HealthCheckResponse()
                response.status = Self.wire(status)
                return response
            },
            .serverStreaming(RPCMethod.path(service: Self.service, method: "Watch")) {
                [board] (request: Grpc_Health_V1_HealthCheckRequest, writer: ResponseWriter<Grpc_Health_V1_HealthCheckResponse>, _: ServerContext) in
                var last: HealthStatusBoard.Status?
                for await status in board.watch(request.service) where status != last {
                    last = status
                    var response = Grpc_Health_V1_HealthCheckResponse()
                    response.status = Self.wire(status)
                    try await writer.write(response)
                }
            },
        ]
    }

    private static func wire(_ status: HealthStatusBoard.Status) -> Grpc_Health_V1_HealthCheckResponse.ServingStatus {
        switch status {
        case .unknown: .unknown
        case .serving: .serving
        case .notServing: .notServing
        case .serviceUnknown: .serviceUnknown
        }
    }
}
