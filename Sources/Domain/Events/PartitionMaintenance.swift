public import Logging
public import ServiceLifecycle

/// Creates next months' event partitions and drops expired ones, hourly.
public struct PartitionMaintenance: Service {
    let partitions: EventPartitions
    let logger: Logger

    public init(partitions: EventPartitions, logger: Logger) {
        self.partitions = partitions
        self.logger = logger
    }

    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                _ = try await partitions.maintain()
            } catch {
                logger.error("event partition maintenance failed", metadata: ["error": "\(error)"])
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(3600)) }
        }
    }
}
