import NIOCore

/// One event loop's connections to the nodes of a cluster, each opened on first use and
/// managed like the single Redis' connection (queueing while connecting, backoff after a loss).
///
/// Loop-bound, like `RedisConnectionSlot`: a handler on this loop talks to any node without a
/// thread hop.
final class RedisNodeConnections {
    let loop: any EventLoop
    private let configuration: RedisConfiguration
    private var slots: [RedisNodeAddress: RedisConnectionSlot] = [:]
    private var isShutDown = false

    init(loop: any EventLoop, configuration: RedisConfiguration) {
        self.loop = loop
        self.configuration = configuration
    }

    /// The connection to `address` (a shut-down one after `shutdown`).
    func slot(for address: RedisNodeAddress) -> RedisConnectionSlot {
        if let slot = slots[address] { return slot }
        var configuration = self.configuration
        configuration.host = address.host
        configuration.port = address.port
        configuration.database = 0
        let slot = RedisConnectionSlot(loop: loop, configuration: configuration)
        if isShutDown { slot.shutdown() }
        slots[address] = slot
        return slot
    }

    var isConnected: Bool { slots.values.contains { $0.isConnected } }

    var writesAwaitingReplicas: Int { slots.values.reduce(0) { $0 + $1.acknowledgements.count } }

    func shutdown() {
        isShutDown = true
        for slot in slots.values { slot.shutdown() }
    }
}
