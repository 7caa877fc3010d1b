/// The GCRA decision as one Redis script: read each key's TAT, decide, store, atomically.
///
/// KEYS: the keys' TATs (microseconds since the epoch, on Redis' clock), all under one hash
/// tag (a shard of `RateLimiter`), so one call decides many keys on Redis Cluster too.
/// ARGV: limit, period in microseconds, then one cost (requests spent) per key.
/// Returns {allowed (0/1), remaining, retry_after_us} per key, flattened, in KEYS order.
/// One `TIME` and one `MGET` serve the whole call; a key named twice sees its own earlier
/// decision. All arithmetic stays in integers below 2^53, exact in Lua's doubles.
enum RateLimitScript {
    static let gcra = RedisScript(name: "rate_limit_gcra", source: """
        local limit = tonumber(ARGV[1])
        local period = tonumber(ARGV[2])
        local interval = period / limit
        local time = redis.call('TIME')
        local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
        local stored = redis.call('MGET', unpack(KEYS))
        local decided = {}
        local out = {}
        for i, key in ipairs(KEYS) do
          local cost = tonumber(ARGV[i + 2])
          local tat = decided[key] or tonumber(stored[i]) or now
          if tat < now then tat = now end
          local new_tat = tat + interval * cost
          local allow_at = new_tat - period
          local n = #out
          if allow_at > now then
            local remaining = math.floor((now - (tat - period)) / interval)
            if remaining < 0 then remaining = 0 end
            out[n + 1], out[n + 2], out[n + 3] = 0, remaining, math.ceil(allow_at - now)
          else
            decided[key] = new_tat
            redis.call('SET', key, string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
            out[n + 1], out[n + 2], out[n + 3] = 1, math.floor((now - allow_at) / interval), 0
          end
        end
        return out
        """)
}
