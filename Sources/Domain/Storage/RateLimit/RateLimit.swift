/// A limit such as "200 per minute", enforced as GCRA (the generic cell rate algorithm).
///
/// GCRA keeps one number per key, the theoretical arrival time (TAT) of the next request:
/// a key may spend up to `limit` requests at once, after which capacity returns evenly, one
/// request every `period / limit`. Over any window of length `period` no key gets more than
/// `limit` plus what was refilled inside it, and it costs one Redis key with a TTL, not a
/// log of timestamps. Decisions use Redis' clock (`TIME`), so instances with skewed clocks
/// still agree.
public struct RateLimit: Sendable, Hashable, CustomStringConvertible {
    public var limit: Int
    public var period: Duration

    public init(limit: Int, period: Duration) {
        precondition(limit > 0, "a rate limit allows at least one request")
        precondition(period > .zero, "a rate limit's period is positive")
        self.limit = limit
        self.period = period
    }

    public static func perMinute(_ limit: Int) -> RateLimit { RateLimit(limit: limit, period: .seconds(60)) }
    public static func perSecond(_ limit: Int) -> RateLimit { RateLimit(limit: limit, period: .seconds(1)) }

    var periodMicroseconds: Int64 { period.microseconds }

    public var description: String { "\(limit) per \(period)" }
}
