public import Logging
import Synchronization

/// Exact per-key limits shared by every instance: at most `limit` accepted requests in any
/// window of `period`, decided by one atomic Redis script per request.
///
/// Chosen over GCRA (`RateLimiter`) where the limit is a contract a partner counts against,
/// e.g. "200 top-ups per minute": GCRA refills continuously, so a burst spread over a minute
/// gets the limit plus what refilled meanwhile; the window log accepts exactly `limit`. It costs
/// one sorted-set entry per accepted request within the window (200 per customer here), which
/// is fine for per-customer limits and why events' per-user limits stay on GCRA.
///
/// With Redis unreachable it falls back by `Fallback`: a local share of the limit
/// (limit / instances), or refusal (`decide` throws, so callers answer UNAVAILABLE).
public final class SlidingWindowLimiter: Sendable {
    public enum Fallback: String, Sendable {
        /// Decide in process with the limit divided by the instance count.
        case local
        /// Refuse every request until Redis answers again.
        case refuse
    }

    private let redis: RedisClient
    private let keyPrefix: String
    private let fallback: Fallback
    private let instanceCount: Int
    private let local = LocalRateLimiter()
    private let degraded = Atomic<Bool>(false)
    private let sequence = Atomic<Int>(0)
    private let instanceTag: String
    private let logger: Logger

    public init(redis: RedisClient, keyPrefix: String, fallback: Fallback, instanceCount: Int, logger: Logger) {
        self.redis = redis
        self.keyPrefix = keyPrefix
        self.fallback = fallback
        self.instanceCount = max(1, instanceCount)
        var generator = SystemRandomNumberGenerator()
        self.instanceTag = String(generator.next() as UInt64, radix: 36)
        self.logger = logger
    }

    /// True while Redis is unreachable and the fallback decides.
    public var isDegraded: Bool { degraded.load(ordering: .relaxed) }

    /// How decisions are made now: "redis", or the fallback's name while Redis is unreachable.
    public var mode: String { isDegraded ? fallback.rawValue : "redis" }

    /// Spends one request of `key`'s budget if it has one. Throws `RedisError` only when Redis
    /// is unreachable and the fallback is `.refuse`.
    public func decide(key: String, limit: RateLimit) async throws -> RateLimitDecision {
        // The key in braces: its one sorted set sits in one cluster slot.
        let member = "\(instanceTag):\(sequence.wrappingAdd(1, ordering: .relaxed).newValue)"
        do {
            let reply = try await redis.run(
                SlidingWindowScript.decide, keys: [RedisArgument("\(keyPrefix):{\(key)}")],
                arguments: [RedisArgument(limit.limit), RedisArgument(limit.periodMicroseconds), RedisArgument(member)])
            guard let parts = reply.array, parts.count == 3, let allowed = parts[0].int, let remaining = parts[1].int,
                  let retry = parts[2].int else {
                throw RedisError(.unexpectedReply, "sliding window script returned \(reply)")
            }
            if degraded.exchange(false, ordering: .relaxed) {
                logger.notice("\(keyPrefix) limits are decided in Redis again")
            }
            return RateLimitDecision(allowed: allowed == 1, remaining: Int(remaining), retryAfter: .microseconds(retry))
        } catch let error as RedisError where error.kind != .unexpectedReply && error.kind != .server {
            if degraded.exchange(true, ordering: .relaxed) == false {
                logger.warning("Redis unreachable: \(keyPrefix) limits fall back to \(fallback.rawValue)", metadata: ["error": "\(error)"])
            }
            switch fallback {
            case .refuse:
                throw error
            case .local:
                let share = RateLimit(limit: (limit.limit + instanceCount - 1) / instanceCount, period: limit.period)
                return local.decide(key: key, limit: share, cost: 1)
            }
        }
    }
}
