/// The GCRA decision as one Redis script: read the key's TAT, decide, store, atomically.
///
/// KEYS[1]: the key's TAT (microseconds since the epoch, on Redis' clock).
/// ARGV: limit, period in microseconds, cost (requests this call spends).
/// Returns {allowed (0/1), remaining, retry_after_us}.
/// All arithmetic stays in integers below 2^53, exact in Lua's doubles.
enum RateLimitScript {
    static let gcra = RedisScript(name: "rate_limit_gcra", source: """
        local limit = tonumber(ARGV[1])
        local period = tonumber(ARGV[2])
        local cost = tonumber(ARGV[3])
        local interval = period / limit
        local time = redis.call('TIME')
        local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
        local tat = tonumber(redis.call('GET', KEYS[1])) or now
        if tat < now then tat = now end
        local new_tat = tat + interval * cost
        local allow_at = new_tat - period
        if allow_at > now then
          local remaining = math.floor((now - (tat - period)) / interval)
          if remaining < 0 then remaining = 0 end
          return {0, remaining, math.ceil(allow_at - now)}
        end
        redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
        return {1, math.floor((now - allow_at) / interval), 0}
        """)
}
