import Logging

/// Finds devices whose deadline passed in Redis (their instance died, or their heartbeats
/// stopped reaching Redis) and takes them away, publishing the users' OFFLINE.
///
/// Every instance sweeps every shard's sorted set of deadlines, a few times per interval; a
/// device is claimed atomically (its deadline moved one lease ahead) before it is taken away,
/// so two sweepers never both handle it and a sweeper that dies mid-way leaves it to the next.
/// Chosen over keyspace notifications, which Redis sends at most once to whoever listens at
/// that moment (lost while an instance reconnects) and only when Redis itself gets round to
/// expiring a key, with no bound on the delay.
struct PresenceSweeper: Sendable {
    let registry: PresenceRegistry
    let configuration: PresenceConfiguration
    let logger: Logger

    /// Devices taken away per shard in one sweep.
    static let batch = 1000

    /// One sweep; returns the users whose presence changed.
    @discardableResult
    func sweep() async -> Int {
        do {
            return try await registry.sweep(nowMs: PresenceRegistry.nowMs(), lease: max(.seconds(2), configuration.interval),
                                            limit: Self.batch)
        } catch {
            logger.debug("presence sweep failed", metadata: ["error": "\(error)"])
            return 0
        }
    }
}
