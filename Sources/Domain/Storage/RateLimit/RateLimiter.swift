public import Logging
import NIOCore
import NIOPosix
import Synchronization

/// Per-key rate limits that hold across every Tally instance.
///
/// Decisions are made by one atomic script in Redis (`RateLimitScript.gcra`), so any number
/// of instances share one budget per key exactly. Keys are spread over `shards` hash tags
/// (each shard one hash `<prefix>:{<prefix>:<shard>}:tat`, key -> TAT): the keys of one shard
/// are decided by one script call, even on Redis Cluster, so a batch of keys (every user of an event batch) costs one
/// call per shard it touches instead of one per key, and concurrent decisions from one event
/// loop share its connection's writes.
/// When Redis is unreachable, a local limiter decides with the limit divided by
/// `instanceCount`, and `isDegraded` says so (health reports it) until Redis answers again.
public final class RateLimiter: Sendable {
    private let redis: RedisClient
    private let instanceCount: Int
    private let keyPrefix: String
    private let shards: Int
    /// Per shard: the hash of its keys' TATs and its sweep cursor (see `RateLimitScript`).
    let shardKeys: [[RedisArgument]]
    private let local = LocalRateLimiter()
    private let degraded = Atomic<Bool>(false)
    private let batchers = Mutex<[ObjectIdentifier: RateLimitBatcher]>([:])
    private let roundTrips = Atomic<Int>(0)
    private let logger: Logger

    /// Most keys one script call decides (Lua's `unpack` of KEYS stays far below its limit).
    static let keysPerCall = 500

    /// `instanceCount` is how many Tally instances share the limit (for the local fallback).
    /// `shards` is how many hash tags the keys are spread over: more spreads a Redis Cluster's
    /// load over more slots, fewer makes batches cheaper (one call per shard touched).
    public init(
        redis: RedisClient, instanceCount: Int = 1, keyPrefix: String = "rl", shards: Int = 16,
        logger: Logger = Logger(label: "tally.ratelimit")
    ) {
        self.redis = redis
        self.instanceCount = max(1, instanceCount)
        self.keyPrefix = keyPrefix
        self.shards = max(1, shards)
        self.shardKeys = (0..<max(1, shards)).map { shard in
            let tag = "\(keyPrefix):{\(keyPrefix):\(shard)}"
            return [RedisArgument("\(tag):tat"), RedisArgument("\(tag):sweep")]
        }
        self.logger = logger
    }

    /// True while decisions are made locally because Redis is unreachable.
    public var isDegraded: Bool { degraded.load(ordering: .relaxed) }

    /// Batched decisions sent to Redis so far, each one pipelined write (tests).
    var redisRoundTrips: Int { roundTrips.load(ordering: .relaxed) }

    /// Spends `cost` requests of `key`'s budget under `limit`, if it has them. On an event
    /// loop, decisions asked for in the same pass of the loop are decided together
    /// (`RateLimitBatcher`).
    public func decide(key: String, limit: RateLimit, cost: Int = 1) async -> RateLimitDecision {
        if let loop = MultiThreadedEventLoopGroup.currentEventLoop {
            return await batcher(for: loop).decide(key: key, cost: cost, limit: limit, with: self)
        }
        return await decide([(key: key, cost: cost)], limit: limit)[0]
    }

    /// The loop's batcher, made on first use.
    private func batcher(for loop: any EventLoop) -> RateLimitBatcher {
        batchers.withLock { batchers in
            if let batcher = batchers[ObjectIdentifier(loop)] { return batcher }
            let batcher = RateLimitBatcher(loop: loop)
            batchers[ObjectIdentifier(loop)] = batcher
            return batcher
        }
    }

    /// Decides many keys at once: one script call per shard touched, all in one pipelined
    /// write (e.g. every user of an event batch). Returns the decisions in order.
    public func decide(_ requests: [(key: String, cost: Int)], limit: RateLimit) async -> [RateLimitDecision] {
        let calls = plan(requests)
        let rule = [RedisArgument(limit.limit), RedisArgument(limit.periodMicroseconds)]
        do {
            let scriptCalls = calls.map { call in
                var arguments = rule
                arguments.reserveCapacity(2 + 2 * call.indices.count)
                for index in call.indices {
                    arguments.append(RedisArgument(requests[index].key))
                    arguments.append(RedisArgument(requests[index].cost))
                }
                return (keys: shardKeys[call.shard], arguments: arguments)
            }
            roundTrips.add(1, ordering: .relaxed)
            let replies = scriptCalls.count == 1
                ? [try await redis.run(RateLimitScript.gcra, keys: scriptCalls[0].keys, arguments: scriptCalls[0].arguments)]
                : try await redis.runPipelined(RateLimitScript.gcra, calls: scriptCalls)
            var decisions = [RateLimitDecision](repeating: RateLimitDecision(allowed: false, remaining: 0, retryAfter: .zero), count: requests.count)
            for (call, reply) in zip(calls, replies) {
                for (index, decision) in zip(call.indices, try Self.decisions(from: reply, count: call.indices.count)) {
                    decisions[index] = decision
                }
            }
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

    /// Where `key`'s state lives: a field (the key itself) of its shard's hash.
    func storage(of key: String) -> (hash: String, field: String) {
        (String(decoding: shardKeys[Self.shard(of: key, among: shards)][0].bytes, as: UTF8.self), key)
    }

    /// The requests' indices grouped into script calls: by shard, at most `keysPerCall` each.
    private func plan(_ requests: [(key: String, cost: Int)]) -> [(shard: Int, indices: [Int])] {
        if requests.count == 1 { return [(Self.shard(of: requests[0].key, among: shards), [0])] }
        var byShard: [Int: [Int]] = [:]
        for (index, request) in requests.enumerated() {
            byShard[Self.shard(of: request.key, among: shards), default: []].append(index)
        }
        return byShard.flatMap { shard, indices in
            stride(from: 0, to: indices.count, by: Self.keysPerCall).map {
                (shard, Array(indices[$0..<min($0 + Self.keysPerCall, indices.count)]))
            }
        }
    }

    /// FNV-1a of the key's UTF-8: the same shard in every process (Swift's `Hasher` is
    /// seeded per process, so it cannot be used here).
    static func shard(of key: String, among shards: Int) -> Int {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key.utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
        }
        return Int(hash % UInt64(shards))
    }

    /// The script's reply, {allowed, remaining, retry_after_us} per key, as decisions.
    private static func decisions(from reply: RESPValue, count: Int) throws -> [RateLimitDecision] {
        guard let parts = reply.array, parts.count == 3 * count else {
            throw RedisError(.unexpectedReply, "rate limit script returned \(reply)")
        }
        return try (0..<count).map { key in
            guard let allowed = parts[3 * key].int, let remaining = parts[3 * key + 1].int, let retryMicroseconds = parts[3 * key + 2].int else {
                throw RedisError(.unexpectedReply, "rate limit script returned \(reply)")
            }
            return RateLimitDecision(allowed: allowed == 1, remaining: Int(remaining), retryAfter: .microseconds(retryMicroseconds))
        }
    }
}
