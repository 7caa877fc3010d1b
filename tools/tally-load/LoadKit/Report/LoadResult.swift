/// The outcome of a run: per-RPC statistics, their total, and the measured time.
public struct LoadResult: Sendable {
    public struct RPCResult: Sendable {
        public var rpc: RPCDescription
        public var statistics: RPCStatistics
    }

    public var rpcs: [RPCResult]
    /// Seconds from the start of the measured phase to the end of its last call.
    public var elapsed: Double
    public var connections: Int
    public var concurrency: Int
    /// Open-loop target rate, nil for closed loop.
    public var targetRate: Double?
    /// The response field `RPCStatistics.flagged` counts (`LoadConfiguration.countedField`).
    public var countedField: String?

    public init(rpcs: [RPCResult], elapsed: Double, connections: Int, concurrency: Int, targetRate: Double?, countedField: String? = nil) {
        self.rpcs = rpcs
        self.elapsed = elapsed
        self.connections = connections
        self.concurrency = concurrency
        self.targetRate = targetRate
        self.countedField = countedField
    }

    /// Every RPC merged.
    public var total: RPCStatistics {
        var total = RPCStatistics()
        for rpc in rpcs { total.merge(rpc.statistics) }
        return total
    }

    /// Failed calls over all measured calls (0 when there were none).
    public var errorRate: Double {
        let total = self.total
        return total.calls == 0 ? 0 : Double(total.errors) / Double(total.calls)
    }

    public func rate(_ count: Int) -> Double { elapsed > 0 ? Double(count) / elapsed : 0 }
}
