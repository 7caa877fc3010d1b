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

    /// Decides many keys at once (one pipelined write): e.g. every user of an event batch.
    /// Returns the decisions in order.
    public func decide(_ requests: [(key: String, cost: Int)], limit: RateLimit) async -> [RateLimitDecision] {
        guard requests.count > 1 else {
            return await requests.asyncMap { await decide(key: $0.key, limit: limit, cost: $0.cost) }
        }
        do {
            let replies = try await redis.runPipelined(
                RateLimitScript.gcra,
                calls: requests.map { request in
                    (keys: [RedisArgument("\(keyPrefix):{\(request.key)}")],
                     arguments: [RedisArgument(limit.limit), RedisArgument(limit.periodMicroseconds), RedisArgument(request.cost)])
                })
            var decisions: [RateLimitDecision] = []
            for reply in replies {
                guard let parts = reply.array, parts.count == 3, let allowed = parts[0].int, let remaining = parts[1].int,
                    let retry = parts[2].int
                else { throw RedisError(.unexpectedReply, "rate limit script returned \(reply)") }
                decisions.append(RateLimitDecision(allowed: allowed == 1, remaining: Int(remaining), retryAfter: .microseconds(retry)))
            }
            if degraded.exchange(false, ordering: .relaxed) { logger.notice("rate limits are decided in Redis again") }
            return decisions
        } catch {
            return await requests.asyncMap { await decide(key: $0.key, limit: limit, cost: $0.cost) }
        }
    }

    /// Spends `cost` requests of `key`'s budget under `limit`, if it has them.
    public func decide(key: String, limit: RateLimit, cost: Int = 1) async -> RateLimitDecision {
        // The hash tag keeps the key on one cluster slot with anything else of this key.
        let redisKey = RedisArgument("\(keyPrefix):{\(key)}")
        do {
            let reply = try await redis.run(
                RateLimitScript.gcra, keys: [redisKey],
                arguments: [RedisArgument(limit.limit), RedisArgument(limit.periodMicroseconds), RedisArgument(cost)])
            guard let parts = reply.array, parts.count == 3,
                let allowed = parts[0].int, let remaining = parts[1].int, let retryMicroseconds = parts[2].int
            else {
                throw RedisError(.unexpectedReply, "rate limit script returned \(reply)")
            }
            if degraded.exchange(false, ordering: .relaxed) {
                logger.notice("rate limits are decided in Redis again")
            }
            return RateLimitDecision(
                allowed: allowed == 1, remaining: Int(remaining), retryAfter: .microseconds(retryMicroseconds))
        } catch {
            if degraded.exchange(true, ordering: .relaxed) == false {
                logger.warning("Redis unreachable, rate limits fall back to this instance", metadata: ["error": "\(error)"])
            }
            let share = (limit.limit + instanceCount - 1) / instanceCount
            return local.decide(key: key, limit: RateLimit(limit: share, period: limit.period), cost: cost)
        }
    }
}

extension Array {
    /// `map` with an async transform, in order, one at a time.
    func asyncMap<T>(_ transform: (Element) async -> T) async -> [T] {
        var results: [T] = []
        results.reserveCapacity(count)
        for element in self { results.append(await transform(element)) }
        return results
    }
}
