import Storage
public import ServiceLifecycle

/// Keeps every board's Redis copy caught up with Postgres, whichever instance wrote the scores
/// and whether or not it survived: each `repairInterval` it reads the boards with overdue
/// pending merges (reads of those go to Postgres here) and merges them again into Redis.
/// Every instance runs one; they share the work through row locks.
public struct LeaderboardRepair: Service {
    let store: LeaderboardStore

    public init(store: LeaderboardStore) {
        self.store = store
    }

    public func run() async throws {
        store.behind.awaitFirstSweep()
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            await store.sweep()
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: store.configuration.repairInterval) }
        }
    }
}
