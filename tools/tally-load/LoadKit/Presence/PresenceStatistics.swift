public import Histogram

/// What the streams of one event loop sent and received, merged over loops at the end.
public struct PresenceStatistics: Sendable {
    /// Delivery latency in nanoseconds: a subscriber's receive time minus the sender's send time
    /// of the state received (`PresenceActivity`), each delivered state measured once per
    /// subscriber.
    public var latency = RPCStatistics.latencyHistogram()
    public var latencySum: UInt64 = 0
    /// Measured deliveries whose receive time was before the send time (the wall clock stepped
    /// back); recorded as 1 ns.
    public var clockSteps = 0
    public var changesSent = 0
    public var heartbeatsSent = 0
    public var messagesReceived = 0
    /// User states received (a message carries one per user that changed since the last one).
    public var changesReceived = 0
    /// States received again (a snapshot, or a state already measured): not measured.
    public var repeats = 0
    /// How streams ended (or failed to start): status name and a sample message.
    public var outcomes: [String: RPCStatistics.StatusTally] = [:]

    public init() {}

    public var measured: UInt64 { latency.totalCount }

    public var meanLatency: Double { measured == 0 ? 0 : Double(latencySum) / Double(measured) }

    mutating func recordDelivery(sentAt: Int64, receivedAt: Int64) {
        var nanoseconds: UInt64 = 1
        if receivedAt > sentAt {
            nanoseconds = min(UInt64(receivedAt - sentAt), RPCStatistics.maxLatency)
        } else {
            clockSteps += 1
        }
        _ = latency.record(nanoseconds)
        latencySum &+= nanoseconds
    }

    mutating func recordOutcome(_ status: String, message: String) {
        outcomes[status, default: RPCStatistics.StatusTally(count: 0, sampleMessage: message)].count += 1
    }

    public mutating func merge(_ other: PresenceStatistics) {
        latency.add(other.latency)
        latencySum &+= other.latencySum
        clockSteps += other.clockSteps
        changesSent += other.changesSent
        heartbeatsSent += other.heartbeatsSent
        messagesReceived += other.messagesReceived
        changesReceived += other.changesReceived
        repeats += other.repeats
        for (status, tally) in other.outcomes {
            outcomes[status, default: RPCStatistics.StatusTally(count: 0, sampleMessage: tally.sampleMessage)].count += tally.count
        }
    }
}
