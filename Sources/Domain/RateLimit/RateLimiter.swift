public import Logging
import Synchronization

/// Per-key rate limits that hold across every Tally instance.
///
/// Each decision is one atomic script in Redis (`RateLimitScript.gcra`), so any number of
/// instances share one budget per key exactly. Concurrent decisions from one event loop share
/// its connection's writes, which is what makes tens of thousands per second possible.
/// When Redis is unreachable, a local limiter decides with the limit divided by
/// `instanceCount`, and `isDegraded` says so (health reports it) until Redis answers again.
public final class RateLimiter: Sendable {
    private let redis: RedisClient
    private let instanceCount: Int
    private let keyPrefix: String
    private let local = LocalRateLimiter()
    private let degraded = Atomic<Bool>(false)
    private let logger: Logger

    /// `instanceCount` is how many Tally instances share the limit (for the local fallback).
    public init(redis: RedisClient, instanceCount: Int = 1, keyPrefix: String = "rl", logger: Logger = Logger(label: "tally.ratelimit")) {
        self.redis = redis
        self.instanceCount = max(1, instanceCount)
        self.keyPrefix = keyPrefix
        self.logger = logger
    }

    /// True while decisions are made locally because Redis is unreachable.
    public var isDegraded: Bool { degraded.load(ordering: .relaxed) }

    /// Spends `cost` requests of `key`'s budget under `limit`, if it has them.
    public func decide(key: String, limit: RateLimit, cost: Int = 1) async -> RateLimitDecision {
        await decide([(key: key, cost: cost)], limit: limit)[0]
    }

    /// Decides many keys at once (one pipelined write): e.g. every user of an event batch.
    /// Returns the decisions in order.
    public func decide(_ requests: [(key: String, cost: Int)], limit: RateLimit) async -> [RateLimitDecision] {
        // The hash tag keeps each key on one cluster slot with anything else of that key.
        let calls = requests.map { request in
            (keys: [RedisArgument("\(keyPrefix):{\(request.key)}")],
             arguments: [RedisArgument(limit.limit), RedisArgument(limit.periodMicroseconds), RedisArgument(request.cost)])
        }
        do {
            let replies = calls.count == 1
                ? [try await redis.run(RateLimitScript.gcra, keys: calls[0].keys, arguments: calls[0].arguments)]
                : try await redis.runPipelined(RateLimitScript.gcra, calls: calls)
            let decisions = try replies.map(Self.decision)
            if degraded.exchange(false, ordering: .relaxed) {
                logger.notice("rate limits are decided in Redis again")
            }
            return decisions
        } catch {
            if degraded.exchange(true, ordering: .relaxed) == false {
                logger.warning("Redis unreachable, rate limits fall back to this instance", metadata: ["error": "\(error)"])
            }
            let share = RateLimit(limit: (limit.limit + instanceCount - 1) / instanceCount, period: limit.period)
            return requests.map { local.decide(key: $0.key, limit: share, cost: $0.cost) }
        }
    }

    /// The script's reply {allowed, remaining, retry_after_us} as a decision.
    private static func decision(from reply: RESPValue) throws -> RateLimitDecision {
        guard let parts = reply.array, parts.count == 3,
            let allowed = parts[0].int, let remaining = parts[1].int, let retryMicroseconds = parts[2].int
        else {
            throw RedisError(.unexpectedReply, "rate limit script returned \(reply)")
        }
        return RateLimitDecision(allowed: allowed == 1, remaining: Int(remaining), retryAfter: .microseconds(retryMicroseconds))
    }
}
