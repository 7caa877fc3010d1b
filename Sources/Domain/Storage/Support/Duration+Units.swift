/// Durations as the whole units storage protocols take (Redis `PX`, Postgres
/// `statement_timeout`, timers), saturating instead of trapping: a client's deadline of
/// thousands of years must not crash the server.
extension Duration {
    /// Whole milliseconds, rounded toward zero.
    public var milliseconds: Int64 { whole(perSecond: 1000) }
    /// Whole microseconds, rounded toward zero.
    public var microseconds: Int64 { whole(perSecond: 1_000_000) }
    /// Whole nanoseconds, rounded toward zero.
    public var nanoseconds: Int64 { whole(perSecond: 1_000_000_000) }

    private func whole(perSecond units: Int64) -> Int64 {
        let (seconds, attoseconds) = components
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: units)
        if overflow { return seconds < 0 ? .min : .max }
        let (total, overflowSum) = scaled.addingReportingOverflow(attoseconds / (1_000_000_000_000_000_000 / units))
        return overflowSum ? (seconds < 0 ? .min : .max) : total
    }
}
