import Storage

/// The Lua scripts that change presence in Redis, each atomic over one shard's keys.
///
/// Keys of a shard share the hash tag `{<namespace>:<shard>}`: a user's devices (a hash:
/// device -> `session \t status \t deadline_ms \t changed_at_ms \t activity`), the user's
/// aggregate record (`version \t status \t changed_at_ms \t until_ms \t activity`) and the
/// shard's sorted set of device deadlines the sweepers read. A change of the aggregate is
/// published on the user's channel by the script that made it, so channel order is version
/// order.
enum PresenceScripts {
    /// Shared by the scripts: recomputes the user's aggregate from its live devices, writes and
    /// publishes it when status or activity changed. Returns `{changed, version, status,
    /// changed_at, activity}`.
    private static let aggregate = """
        local RANK = {[1] = 4, [3] = 3, [2] = 2, [4] = 1}
        local function parse(record)
          local session, status, deadline, changed, activity = string.match(record, '^([^\\t]*)\\t([^\\t]*)\\t([^\\t]*)\\t([^\\t]*)\\t(.*)$')
          return session, tonumber(status), tonumber(deadline), tonumber(changed), activity
        end
        local function aggregate(devices, record_key, channel, now)
          local best_rank, best_status, best_activity, best_changed, until_ms = 0, 4, '', 0, 0
          local all = redis.call('HGETALL', devices)
          for i = 2, #all, 2 do
            local _, status, deadline, changed, activity = parse(all[i])
            if deadline and deadline >= now then
              if deadline > until_ms then until_ms = deadline end
              local rank = RANK[status] or 0
              if rank > best_rank or (rank == best_rank and changed > best_changed) then
                best_rank, best_status, best_activity, best_changed = rank, status, activity, changed
              end
            end
          end
          if best_rank <= 1 then best_status, best_activity = 4, '' end
          local version, status, changed_at, activity = 0, 4, 0, ''
          local old = redis.call('GET', record_key)
          if old then
            local v, s, c, _, a = string.match(old, '^([^\\t]*)\\t([^\\t]*)\\t([^\\t]*)\\t([^\\t]*)\\t(.*)$')
            version, status, changed_at, activity = tonumber(v), tonumber(s), tonumber(c), a
          end
          local changed = 0
          if not old or status ~= best_status or activity ~= best_activity then
            changed = 1
            version = math.max(version + 1, now)
            status, activity, changed_at = best_status, best_activity, now
          end
          local record = version .. '\\t' .. status .. '\\t' .. changed_at .. '\\t' .. until_ms .. '\\t' .. activity
          -- Kept a day past the last deadline, so a snapshot shows when an offline user left.
          redis.call('SET', record_key, record, 'PX', math.max(until_ms - now, 0) + 86400000)
          if until_ms > 0 then redis.call('PEXPIRE', devices, until_ms - now + 60000) end
          if changed == 1 then redis.call('PUBLISH', channel, record) end
          return {changed, version, status, changed_at, activity}
        end
        """

    /// A device says it is alive (hello, heartbeat, status): KEYS devices, record, deadlines;
    /// ARGV user, device, session, status, activity, now_ms, deadline_ms, max_devices, channel,
    /// takeover (1 on hello). Returns the aggregate, `{-1}` when the user already has
    /// max_devices live devices, `{-2}` when another stream took the device over.
    static let touch = RedisScript(name: "presence_touch", source: aggregate + """

        local devices, record_key, deadlines = KEYS[1], KEYS[2], KEYS[3]
        local user, device, session, status, activity = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
        local now, deadline, max_devices, channel, takeover = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]), ARGV[9], ARGV[10] == '1'
        local current = redis.call('HGET', devices, device)
        local changed_at = now
        if current then
          local owner, old_status, _, old_changed, old_activity = parse(current)
          if owner ~= session and not takeover then return {-2} end
          if old_status == status and old_activity == activity then changed_at = old_changed end
        else
          local live = 0
          local all = redis.call('HVALS', devices)
          for i = 1, #all do
            local _, _, d = parse(all[i])
            if d and d >= now then live = live + 1 end
          end
          if live >= max_devices then return {-1} end
        end
        redis.call('HSET', devices, device, session .. '\\t' .. status .. '\\t' .. deadline .. '\\t' .. changed_at .. '\\t' .. activity)
        redis.call('ZADD', deadlines, deadline, user .. '\\n' .. device)
        return aggregate(devices, record_key, channel, now)
        """)

    /// A device goes: KEYS devices, record, deadlines; ARGV user, device, session ('' for any),
    /// now_ms, expired_only ('1': only if its deadline passed: the sweeper's check), channel.
    /// Returns the aggregate, or `{0}` when the device was not there (or not this session's,
    /// or alive after all).
    static let leave = RedisScript(name: "presence_leave", source: aggregate + """

        local devices, record_key, deadlines = KEYS[1], KEYS[2], KEYS[3]
        local user, device, session, now, expired_only, channel = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5] == '1', ARGV[6]
        local member = user .. '\\n' .. device
        local current = redis.call('HGET', devices, device)
        if not current then
          redis.call('ZREM', deadlines, member)
          return {0}
        end
        local owner, _, deadline = parse(current)
        if session ~= '' and owner ~= session then return {0} end
        if expired_only and deadline >= now then
          redis.call('ZADD', deadlines, deadline, member)
          return {0}
        end
        redis.call('HDEL', devices, device)
        redis.call('ZREM', deadlines, member)
        return aggregate(devices, record_key, channel, now)
        """)

    /// Claims expired devices of one shard for a sweeper: KEYS deadlines; ARGV now_ms, lease_ms,
    /// limit. Each claimed member's deadline moves `lease_ms` ahead, so no other sweeper takes
    /// it meanwhile, and one that dies before `leave` leaves it to the next sweep after the lease.
    static let claimExpired = RedisScript(name: "presence_claim_expired", source: """
        local members = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
        local lease = tonumber(ARGV[1]) + tonumber(ARGV[2])
        for i = 1, #members do redis.call('ZADD', KEYS[1], lease, members[i]) end
        return members
        """)
}
