import Units

/// The outcome of a presence load.
public struct PresenceResult: Sendable {
    public var configuration: PresenceLoadConfiguration
    /// Streams open when the changes began, and seconds from the start until then.
    public var openStreams: Int
    public var openSeconds: Double
    /// Everything sent and received over the whole run (latency included).
    public var statistics: PresenceStatistics
    /// Counted while the changes were being sent (`changeSeconds`), for the rates.
    public var changesSent: Int
    public var messagesDuringChanges: Int
    public var changesReceivedDuringChanges: Int
    public var changeSeconds: Double
    public var check: PresenceCheck

    public init(
        configuration: PresenceLoadConfiguration, openStreams: Int, openSeconds: Double, statistics: PresenceStatistics,
        changesSent: Int, messagesDuringChanges: Int, changesReceivedDuringChanges: Int, changeSeconds: Double,
        check: PresenceCheck
    ) {
        self.configuration = configuration
        self.openStreams = openStreams
        self.openSeconds = openSeconds
        self.statistics = statistics
        self.changesSent = changesSent
        self.messagesDuringChanges = messagesDuringChanges
        self.changesReceivedDuringChanges = changesReceivedDuringChanges
        self.changeSeconds = changeSeconds
        self.check = check
    }

    func rate(_ count: Int) -> Double { changeSeconds > 0 ? Double(count) / changeSeconds : 0 }

    /// p99 delivery latency in nanoseconds (0 when nothing was measured).
    public var p99: UInt64 { statistics.measured == 0 ? 0 : statistics.latency.valueAtPercentile(99) }

    /// Whether p99 is within the bar (one interval plus 100 ms); nil when nothing was measured.
    public var meetsBar: Bool? {
        statistics.measured == 0 ? nil : p99 <= UInt64(configuration.bar.nanoseconds)
    }

    /// The run passed: every stream opened and no last change was lost.
    public var passed: Bool { openStreams == configuration.streams && check.lost == 0 }
}
