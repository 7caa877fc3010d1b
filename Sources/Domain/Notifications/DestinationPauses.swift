import Storage
import Units

/// Destinations a sink asked to leave alone for a while (a 429 with `retry_after`), shared by
/// every instance through Redis, so one instance's 429 holds back every instance's workers.
///
/// A pause is a key per destination with a PX TTL (it ends by itself, nothing to clean up),
/// plus a member of one sorted set scored by its end, which is only for counting paused
/// destinations without scanning the keyspace. Both live under one hash tag and change in one
/// script, so they never disagree. A longer pause is never shortened by a shorter one.
struct DestinationPauses: Sendable {
    let redis: RedisClient
    /// `<namespace>:{pause}`: one cluster slot for the keys and their index.
    let prefix: String

    init(redis: RedisClient, namespace: String) {
        self.redis = redis
        self.prefix = "\(namespace):{pause}"
    }

    /// Pauses `destination` for `duration` from now (Redis' clock).
    func pause(_ destination: String, for duration: Duration) async throws {
        _ = try await redis.run(Self.pauseScript, keys: [RedisArgument(key(of: destination)), RedisArgument("\(prefix):ends")],
                                arguments: [RedisArgument(max(1, duration.millisecondsRoundedUp)), RedisArgument(destination)])
    }

    /// How long `destination` stays paused; nil when it is not.
    func remaining(_ destination: String) async throws -> Duration? {
        let ttl = try await redis.send(RedisCommand("PTTL", RedisArgument(key(of: destination)))).int ?? -2
        return ttl > 0 ? .milliseconds(ttl) : nil
    }

    /// Destinations paused now.
    func count() async throws -> Int {
        Int(try await redis.run(Self.countScript, keys: [RedisArgument("\(prefix):ends")], arguments: []).int ?? 0)
    }

    func key(of destination: String) -> String { "\(prefix):\(destination)" }

    /// KEYS: the destination's key, the index. ARGV: milliseconds, destination.
    static let pauseScript = RedisScript(name: "notification_pause", source: """
        local time = redis.call('TIME')
        local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
        local ms = tonumber(ARGV[1])
        if redis.call('PTTL', KEYS[1]) >= ms then return 0 end
        redis.call('SET', KEYS[1], '1', 'PX', ms)
        redis.call('ZADD', KEYS[2], now + ms, ARGV[2])
        redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
        return 1
        """)

    /// KEYS: the index. Drops ended pauses, counts the rest.
    static let countScript = RedisScript(name: "notification_pause_count", source: """
        local time = redis.call('TIME')
        local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
        return redis.call('ZCARD', KEYS[1])
        """)
}
