public import Codec

/// The answer for one request: allowed or not, what is left, when to come back.
public struct RateLimitDecision: Sendable, Hashable {
    public var allowed: Bool
    /// Requests the key may still make right now.
    public var remaining: Int
    /// When denied: how long until this request would be allowed. Zero when allowed.
    public var retryAfter: Duration
    /// True when decided by the local fallback limiter because Redis was unreachable.
    public var decidedLocally: Bool

    public init(allowed: Bool, remaining: Int, retryAfter: Duration, decidedLocally: Bool = false) {
        self.allowed = allowed
        self.remaining = remaining
        self.retryAfter = retryAfter
        self.decidedLocally = decidedLocally
    }

    /// RESOURCE_EXHAUSTED with `retry-after-ms` (and `x-ratelimit-remaining`) metadata.
    public func rejection(_ message: String) -> RPCError {
        var metadata = Metadata()
        let milliseconds = retryAfter.components.seconds * 1000 + retryAfter.components.attoseconds / 1_000_000_000_000_000
        metadata.add("retry-after-ms", String(max(1, milliseconds)))
        metadata.add("x-ratelimit-remaining", String(remaining))
        return RPCError(.resourceExhausted, message, metadata: metadata)
    }
}
