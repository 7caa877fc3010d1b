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
}
