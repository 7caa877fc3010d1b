public import ServiceLifecycle

/// Runs the gRPC server under swift-service-lifecycle: serve until graceful shutdown is
/// triggered (SIGTERM/SIGINT), then report NOT_SERVING, drain and stop.
public struct GRPCServerService: Service {
    public let server: GRPCServer
    public let health: HealthStatusBoard

    public init(server: GRPCServer, health: HealthStatusBoard) {
        self.server = server
        self.health = health
    }

    public func run() async throws {
        _ = try await server.start()
        try? await gracefulShutdown()
        health.setAllNotServing()
        await server.shutdown()
    }
}
