/// A sliding-window log as one Redis script: the times of the requests accepted within the
/// last window, in a sorted set per key; a request is accepted while fewer than `limit` are.
///
/// KEYS[1]: the key's sorted set. ARGV: limit, window in microseconds, a member unique to
/// this request. Returns {allowed (0/1), remaining, retry_after_us}. Times are Redis' own
/// (`TIME`), so instances with skewed clocks agree; scores stay below 2^53.
enum SlidingWindowScript {
    static let decide = RedisScript(name: "rate_limit_sliding_window", source: """
        local limit = tonumber(ARGV[1])
        local window = tonumber(ARGV[2])
        local time = redis.call('TIME')
        local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
        redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
        local count = redis.call('ZCARD', KEYS[1])
        if count < limit then
          redis.call('ZADD', KEYS[1], now, ARGV[3])
          redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000) + 1000)
          return {1, limit - count - 1, 0}
        end
        -- The request is accepted once enough of the accepted ones have left the window: the
        -- (count - limit + 1)-th oldest (the oldest, unless the limit was lowered).
        local leaving = redis.call('ZRANGE', KEYS[1], count - limit, count - limit, 'WITHSCORES')
        return {0, 0, math.max(1, math.ceil(tonumber(leaving[2]) + window - now))}
        """)
}
