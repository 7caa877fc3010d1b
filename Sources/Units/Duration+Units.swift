/// Durations as the whole units protocols take (Redis `PX`, Postgres `statement_timeout`,
/// `grpc-timeout`, NIO timers), saturating instead of trapping: a client's deadline of
/// thousands of years must not crash the server. The one copy: every target imports it.
extension Duration {
    /// Whole milliseconds, rounded toward zero.
    public var milliseconds: Int64 { whole(perSecond: 1000) }
    /// Whole milliseconds, rounded up (a timeout never shorter than asked).
    public var millisecondsRoundedUp: Int64 {
        let down = milliseconds
        return down < .max && self > .milliseconds(down) ? down + 1 : down
    }
    /// Whole microseconds, rounded toward zero.
    public var microseconds: Int64 { whole(perSecond: 1_000_000) }
    /// Whole nanoseconds, rounded toward zero.
    public var nanoseconds: Int64 { whole(perSecond: 1_000_000_000) }
    /// Seconds as a floating-point number (reports and metrics).
    public var inSeconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }

    private func whole(perSecond units: Int64) -> Int64 {
        let (seconds, attoseconds) = components
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: units)
        if overflow { return seconds < 0 ? .min : .max }
        let (total, overflowSum) = scaled.addingReportingOverflow(attoseconds / (1_000_000_000_000_000_000 / units))
        return overflowSum ? (seconds < 0 ? .min : .max) : total
    }
}
