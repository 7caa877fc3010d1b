public import ServiceLifecycle

extension PostgresPool: Service {
    /// Keeps `minConnections` open and closes idle connections every `maintenanceInterval`
    /// until graceful shutdown or cancellation, then shuts the pool down.
    public func run() async throws {
        await maintain()
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: self.configuration.maintenanceInterval)
                await self.maintain()
            }
        }
        await shutdown()
    }
}
