/// The GCRA decision as one Redis script: read each key's TAT, decide, store, atomically.
///
/// A shard of `RateLimiter` keeps its keys' TATs (microseconds since the epoch, on Redis'
/// clock) as fields of one hash, so a call deciding many keys reads them with one HMGET and
/// writes them with one HSET (one write to replicate and append to the AOF, not one per
/// key). A TAT in the past decides exactly like no entry at all, so such fields are swept:
/// each call scans on from the shard's cursor, at least twice as many fields as it may
/// write, and deletes the passed ones; the hash stays about the size of the keys in use.
/// The hash expires a while after its longest-lived TAT, should its shard fall silent.
///
/// KEYS[1]: the shard's hash; KEYS[2]: its sweep cursor (both under the shard's hash tag).
/// ARGV: limit, period in microseconds, then per key: its field, its cost (requests spent).
/// Returns {allowed (0/1), remaining, retry_after_us} per key, flattened, in ARGV order; a
/// key named twice sees its own earlier decision. TATs stay below 2^53 and are handed to
/// HSET as numbers (Redis writes them with `%.17g`: every digit, no `string.format` per key).
enum RateLimitScript {
    static let gcra = RedisScript(name: "rate_limit_gcra", source: """
        local limit = tonumber(ARGV[1])
        local period = tonumber(ARGV[2])
        local interval = period / limit
        local time = redis.call('TIME')
        local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
        local count = (#ARGV - 2) / 2
        local fields = {}
        for i = 1, count do fields[i] = ARGV[1 + 2 * i] end
        local stored = redis.call('HMGET', KEYS[1], unpack(fields))
        local decided, latest = {}, now
        local out = {}
        for i = 1, count do
          local field = fields[i]
          local cost = tonumber(ARGV[2 + 2 * i])
          local tat = decided[field] or tonumber(stored[i]) or now
          if tat < now then tat = now end
          local new_tat = tat + interval * cost
          local allow_at = new_tat - period
          local n = #out
          if allow_at > now then
            local remaining = math.floor((now - (tat - period)) / interval)
            if remaining < 0 then remaining = 0 end
            out[n + 1], out[n + 2], out[n + 3] = 0, remaining, math.ceil(allow_at - now)
          else
            decided[field] = new_tat
            if new_tat > latest then latest = new_tat end
            out[n + 1], out[n + 2], out[n + 3] = 1, math.floor((now - allow_at) / interval), 0
          end
        end
        local writes = {}
        for field, tat in pairs(decided) do
          writes[#writes + 1] = field
          writes[#writes + 1] = tat
        end
        if #writes > 0 then
          redis.call('HSET', KEYS[1], unpack(writes))
          local keep = math.ceil((latest - now) / 1000) + 60000
          if redis.call('PTTL', KEYS[1]) < keep then redis.call('PEXPIRE', KEYS[1], keep) end
        end
        local cursor = redis.call('GET', KEYS[2]) or '0'
        local scan = redis.call('HSCAN', KEYS[1], cursor, 'COUNT', math.max(16, 2 * count))
        local passed = {}
        for i = 1, #scan[2], 2 do
          if tonumber(scan[2][i + 1]) <= now then passed[#passed + 1] = scan[2][i] end
        end
        if #passed > 0 then redis.call('HDEL', KEYS[1], unpack(passed)) end
        redis.call('SET', KEYS[2], scan[1], 'PX', 86400000)
        return out
        """)
}
