/// Every state change of a job queue, each one atomic Lua script.
///
/// Keys of one queue share the hash tag `{q:<name>}` (one Redis Cluster slot). Per-job fields
/// live in hashes shared by the whole queue (id -> value), so a script touches many jobs with
/// one batched command per key (HSET/HMGET/HDEL/ZADD/ZREM over all ids of the call) instead of
/// a handful of commands per job: Lua's per-`redis.call` overhead, not the commands, was the cost.
///   :waiting:<p> LIST ids of priority p (0-9), pushed at the head, claimed from the tail
///                     (FIFO within a priority; claims drain 9 before 8 ...)
///   :delayed    ZSET  id -> ms when it becomes due (delayed jobs, retry backoff, postponed)
///   :active     ZSET  id -> ms when its lease expires, unique per claim: it names the claim
///   :claims     ZSET  "<claimed ms>:<expiry ms>:<lease token>" -> expiry ms, one per claim (not
///                     per job) until it expires: who holds the ids scored with that expiry
///   :completed  ZSET  id -> ms finished (kept by count and age; trimming an id deletes its fields)
///   :failed     ZSET  id -> ms of last retried failure (kept by count and age)
///   :dead       ZSET  id -> ms dead-lettered (after the last attempt)
///   :meta       HASH  id -> finished attempts * 1e8 + max attempts * 10 + priority: the job's
///                     record, whose presence makes an id known (idempotent enqueue) until
///                     trimmed. An attempt counts once it fails or its lease expires, so a claim
///                     writes nothing here (the running attempt is the next one) and release or
///                     postpone have nothing to undo
///   :payload    HASH  id -> "<meta>[;<traceparent>]:<payload>" (dropped on completion): the job's meta travels
///                     with its payload, so a claim reads one field per job
///   :error      HASH  id -> last failure message
///   :stats      HASH  totals (enqueued, completed, processing_ms, failed, dead, ...)
///   :throughput:<second>  completions in that second (expire after 2 minutes)
///   :seen:<width>:<bucket> SET  marks of `enqueueMarked` added in one time bucket of `width` ms
/// A job's state is the one sorted set holding its id, or waiting when none does (each script
/// moves it atomically).
/// Times come from Redis' clock (`TIME`), so instances with skewed clocks agree on leases.
enum JobQueueScripts {
    /// Largest max attempts the packed `:meta` value holds.
    static let maxAttemptsLimit = 9_999_999

    /// Shared Lua prelude: the clock, batched commands, and how jobs enter and leave.
    private static let prelude = """
        local P = KEYS[1]
        local function now_ms()
          local t = redis.call('TIME')
          return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        end
        -- Lua's C stack takes ~8000 values: larger batches go in chunks (even, so pairs stay whole).
        local CHUNK = 4000
        local function batch(command, key, args)
          local n = #args
          for i = 1, n, CHUNK do
            redis.call(command, key, unpack(args, i, math.min(i + CHUNK - 1, n)))
          end
        end
        -- A read over many members (HMGET, ZMSCORE, SMISMEMBER): one reply entry per member.
        local function many(command, key, members)
          local n = #members
          if n == 0 then return {} end
          if n <= CHUNK then return redis.call(command, key, unpack(members)) end
          local out = {}
          for i = 1, n, CHUNK do
            local part = redis.call(command, key, unpack(members, i, math.min(i + CHUNK - 1, n)))
            for j = 1, #part do out[#out + 1] = part[j] end
          end
          return out
        end
        local function meta_attempts(m) return math.floor(m / 100000000) end
        local function meta_max(m) return math.floor(m % 100000000 / 10) end
        -- Ids wait behind everything of their priority; metas[i] belongs to ids[i].
        local function wait(ids, metas)
          local by_priority = {}
          for i = 1, #ids do
            local p = metas[i] % 10
            local list = by_priority[p]
            if not list then
              list = {}
              by_priority[p] = list
            end
            list[#list + 1] = ids[i]
          end
          for p, list in pairs(by_priority) do batch('LPUSH', P .. ':waiting:' .. p, list) end
        end
        -- The claimed-ms of each id that `token` holds (nil for the others): an id's :active
        -- score names its claim in :claims, so a check costs one ZMSCORE plus one lookup per claim.
        local function held_by(token, ids)
          local scores = many('ZMSCORE', P .. ':active', ids)
          local started, out = {}, {}
          for i = 1, #ids do
            local score = scores[i]
            if score then
              local at = started[score]
              if at == nil then
                at = false
                local claim = redis.call('ZRANGEBYSCORE', P .. ':claims', score, score)[1]
                if claim then
                  local claimed, holder = string.match(claim, '^(%d+):%d+:(.*)$')
                  if holder == token then at = tonumber(claimed) end
                end
                started[score] = at
              end
              if at then out[i] = at end
            end
          end
          return out
        end
        -- Ids leave :active (the caller holds their lease, or it expired).
        local function unlease(ids)
          batch('ZREM', P .. ':active', ids)
        end
        -- Counts finished attempts: metas[i] (a number) is ids[i]'s new meta, in both places.
        local function count_attempts(ids, metas)
          if #ids == 0 then return end
          local packed = many('HMGET', P .. ':payload', ids)
          local meta, payload = {}, {}
          for i = 1, #ids do
            meta[2 * i - 1], meta[2 * i] = ids[i], metas[i]
            -- The new meta, then everything after the old one's digits (trace and payload).
            local old = packed[i] or ':'
            payload[2 * i - 1], payload[2 * i] = ids[i], metas[i] .. string.sub(old, string.find(old, '[^%d]') or 1)
          end
          batch('HSET', P .. ':meta', meta)
          batch('HSET', P .. ':payload', payload)
        end
        -- Forgets trimmed completed jobs (their payload is gone already).
        local function forget(ids)
          batch('HDEL', P .. ':meta', ids)
          if redis.call('EXISTS', P .. ':error') == 1 then batch('HDEL', P .. ':error', ids) end
        end
        -- Stores new jobs: ids, their metas (as the caller packed them) and payloads; delays[i] > 0
        -- makes a job delayed.
        local function store(now, ids, metas, payloads, delays)
          local meta, payload, waiting, waiting_metas, delayed = {}, {}, {}, {}, {}
          for i = 1, #ids do
            local id = ids[i]
            meta[2 * i - 1], meta[2 * i] = id, metas[i]
            payload[2 * i - 1], payload[2 * i] = id, payloads[i]
            local delay = delays and delays[i] or 0
            if delay > 0 then
              delayed[#delayed + 1] = now + delay
              delayed[#delayed + 1] = id
            else
              waiting[#waiting + 1] = id
              waiting_metas[#waiting_metas + 1] = metas[i]
            end
          end
          batch('HSET', P .. ':meta', meta)
          batch('HSET', P .. ':payload', payload)
          batch('ZADD', P .. ':delayed', delayed)
          wait(waiting, waiting_metas)
          if #ids > 0 then redis.call('HINCRBY', P .. ':stats', 'enqueued', #ids) end
        end
        """

    /// KEYS[1]: the queue prefix `{q:name}`. ARGV: count, then per job: id, "<meta>:<payload>",
    /// meta (max attempts * 10 + priority, packed by the caller), delay ms. Returns the ids that were new (an id already
    /// known is a duplicate: ignored, which makes enqueueing idempotent).
    static let enqueue = RedisScript(name: "queue_enqueue", source: prelude + "\n" + """
        local n = tonumber(ARGV[1])
        local ids = {}
        for i = 1, n do ids[i] = ARGV[2 + (i - 1) * 4] end
        local known = many('HMGET', P .. ':meta', ids)
        local added, metas, payloads, delays, taken = {}, {}, {}, {}, {}
        for i = 1, n do
          local id = ids[i]
          if not known[i] and not taken[id] then
            taken[id] = true
            local base = 2 + (i - 1) * 4
            added[#added + 1] = id
            payloads[#added] = ARGV[base + 1]
            metas[#added] = ARGV[base + 2]
            delays[#added] = tonumber(ARGV[base + 3])
          end
        end
        store(now_ms(), added, metas, payloads, delays)
        return added
        """)

    /// KEYS[1]: prefix. ARGV: mark ttl ms, job count, then per job: id, "<meta>:<payload>", meta
    /// (as for `enqueue`), mark count, marks... Marks each item of a job as seen and enqueues the
    /// jobs, in one atomic step: an item is never marked without its job being queued.
    /// Returns the marks that were new (the others were seen within the ttl).
    ///
    /// Marks go into sets per time bucket of half the ttl; a mark counts as seen while it is
    /// in the current bucket or one of the two before it, so it is remembered for at least
    /// the ttl (at most 1.5x), at one SMISMEMBER per bucket and one SADD per call instead of a
    /// key with its own expiry per mark.
    static let enqueueMarked = RedisScript(name: "queue_enqueue_marked", source: prelude + "\n" + """
        local ttl, jobs = tonumber(ARGV[1]), tonumber(ARGV[2])
        local now = now_ms()
        local width = math.max(1, math.ceil(ttl / 2))
        local bucket = math.floor(now / width)
        local marks, owner, starts = {}, {}, {}
        local at = 3
        for j = 1, jobs do
          starts[j] = at
          local count = tonumber(ARGV[at + 3])
          for i = at + 4, at + 3 + count do
            marks[#marks + 1] = ARGV[i]
            owner[#owner + 1] = j
          end
          at = at + 4 + count
        end
        local seen = {}
        for back = 0, 2 do
          seen[back + 1] = many('SMISMEMBER', P .. ':seen:' .. width .. ':' .. (bucket - back), marks)
        end
        local fresh, taken, wanted = {}, {}, {}
        for i = 1, #marks do
          local mark = marks[i]
          if seen[1][i] == 0 and seen[2][i] == 0 and seen[3][i] == 0 and not taken[mark] then
            taken[mark] = true
            fresh[#fresh + 1] = mark
            wanted[owner[i]] = true
          end
        end
        if #fresh > 0 then
          local current = P .. ':seen:' .. width .. ':' .. bucket
          batch('SADD', current, fresh)
          -- Seen until the bucket two after this one ends.
          redis.call('PEXPIREAT', current, (bucket + 3) * width + 1000)
        end
        local candidates = {}
        for j = 1, jobs do
          if wanted[j] then candidates[#candidates + 1] = j end
        end
        local ids = {}
        for k = 1, #candidates do ids[k] = ARGV[starts[candidates[k]]] end
        local known = many('HMGET', P .. ':meta', ids)
        local added, metas, payloads, taken_ids = {}, {}, {}, {}
        for k = 1, #candidates do
          local base = starts[candidates[k]]
          local id = ARGV[base]
          if not known[k] and not taken_ids[id] then
            taken_ids[id] = true
            added[#added + 1] = id
            payloads[#added] = ARGV[base + 1]
            metas[#added] = ARGV[base + 2]
          end
        end
        store(now, added, metas, payloads, nil)
        return fresh
        """)

    /// KEYS[1]: prefix. ARGV: max jobs, lease ms, lease token, max bytes (0: any).
    /// First moves due delayed jobs to :waiting and expired leases back (a crashed worker's
    /// jobs; the lost attempt counts, and past the last one the job is dead-lettered), then
    /// claims up to max jobs whose stored payloads sum to at most max bytes (the first job
    /// always, whatever its size). Returns id and "<meta>:<payload>" per job, flat (the meta
    /// counts the attempts finished before this one).
    static let claim = RedisScript(name: "queue_claim", source: prelude + "\n" + """
        local max, lease, token = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
        local max_bytes = tonumber(ARGV[4]) or 0
        local now = now_ms()
        local due = redis.call('ZRANGEBYSCORE', P .. ':delayed', '-inf', now, 'LIMIT', 0, 1000)
        if #due > 0 then
          batch('ZREM', P .. ':delayed', due)
          local metas = many('HMGET', P .. ':meta', due)
          for i = 1, #due do metas[i] = tonumber(metas[i]) or 10 end
          wait(due, metas)
        end
        local expired = redis.call('ZRANGEBYSCORE', P .. ':active', '-inf', now, 'LIMIT', 0, 1000)
        if #expired > 0 then
          unlease(expired)
          redis.call('HINCRBY', P .. ':stats', 'lease_expired', #expired)
          local metas = many('HMGET', P .. ':meta', expired)
          local back, back_metas, dead, errors = {}, {}, {}, {}
          for i = 1, #expired do
            local id, m = expired[i], (tonumber(metas[i]) or 10) + 100000000
            metas[i] = m
            if meta_attempts(m) >= meta_max(m) then
              dead[#dead + 1] = now
              dead[#dead + 1] = id
              errors[#errors + 1] = id
              errors[#errors + 1] = 'lease expired on the last attempt'
            else
              back[#back + 1] = id
              back_metas[#back_metas + 1] = m
            end
          end
          count_attempts(expired, metas)
          if #dead > 0 then
            batch('ZADD', P .. ':dead', dead)
            batch('HSET', P .. ':error', errors)
            redis.call('HINCRBY', P .. ':stats', 'dead', #dead / 2)
          end
          wait(back, back_metas)
        end
        -- Every job of an expired claim has left :active now (unless more than the limit
        -- expired at once): its entry goes too.
        if #expired < 1000 then redis.call('ZREMRANGEBYSCORE', P .. ':claims', '-inf', now) end
        local ids, payloads, bytes = {}, {}, 0
        for p = 9, 0, -1 do
          local room = max - #ids
          if room <= 0 then break end
          local list = P .. ':waiting:' .. p
          if max_bytes <= 0 then
            local popped = redis.call('RPOP', list, room)
            if popped then
              for i = 1, #popped do ids[#ids + 1] = popped[i] end
            end
          else
            -- The oldest `room` ids (the list's tail, oldest last), taken while their payloads fit.
            local tail = redis.call('LRANGE', list, -room, -1)
            local oldest = {}
            for i = #tail, 1, -1 do oldest[#oldest + 1] = tail[i] end
            local packed = many('HMGET', P .. ':payload', oldest)
            local taken = 0
            for i = 1, #oldest do
              local size = #(packed[i] or '')
              if #ids > 0 and bytes + size > max_bytes then break end
              taken = i
              bytes = bytes + size
              ids[#ids + 1] = oldest[i]
              payloads[#ids] = packed[i]
            end
            if taken > 0 then redis.call('RPOP', list, taken) end
            if taken < #oldest then break end
          end
        end
        local n = #ids
        if n == 0 then return {} end
        if max_bytes <= 0 then payloads = many('HMGET', P .. ':payload', ids) end
        -- A lease expiry no other live claim has (a millisecond later at worst).
        local claims = P .. ':claims'
        local until_ms = now + lease
        while redis.call('ZCOUNT', claims, until_ms, until_ms) > 0 do until_ms = until_ms + 1 end
        redis.call('ZADD', claims, until_ms, now .. ':' .. until_ms .. ':' .. token)
        -- Scores as strings: Redis formats a Lua number argument anew for every job.
        local until_text = tostring(until_ms)
        local active, jobs = {}, {}
        for i = 1, n do
          local id = ids[i]
          active[2 * i - 1], active[2 * i] = until_text, id
          jobs[2 * i - 1], jobs[2 * i] = id, payloads[i] or '10:'
        end
        batch('ZADD', P .. ':active', active)
        return jobs
        """)

    /// KEYS[1]: prefix. ARGV: lease token, keep count, keep ms, then ids. Completes the jobs
    /// this lease still holds (a job whose lease expired and was claimed again is not ours),
    /// records processing time, and trims completed records by count and age (with their
    /// fields). Returns how many were completed.
    static let complete = RedisScript(name: "queue_complete", source: prelude + "\n" + """
        local token, keep, keep_ms = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
        local now = now_ms()
        local ids = {}
        for i = 4, #ARGV do ids[#ids + 1] = ARGV[i] end
        local started = held_by(token, ids)
        local now_text = tostring(now)
        local mine, finished, busy, taken = {}, {}, 0, {}
        for i = 1, #ids do
          local id, at = ids[i], started[i]
          if at and not taken[id] then
            taken[id] = true
            mine[#mine + 1] = id
            finished[#finished + 1] = now_text
            finished[#finished + 1] = id
            busy = busy + (now - at)
          end
        end
        local done = #mine
        local completed = P .. ':completed'
        if done > 0 then
          unlease(mine)
          batch('HDEL', P .. ':payload', mine)
          batch('ZADD', completed, finished)
          redis.call('HINCRBY', P .. ':stats', 'completed', done)
          redis.call('HINCRBY', P .. ':stats', 'processing_ms', busy)
          local second = P .. ':throughput:' .. math.floor(now / 1000)
          redis.call('INCRBY', second, done)
          redis.call('EXPIRE', second, 120)
        end
        -- Retention: by age, then by count; a trimmed id is forgotten (and may be enqueued again).
        local old = redis.call('ZRANGEBYSCORE', completed, '-inf', now - keep_ms)
        if #old > 0 then
          batch('ZREM', completed, old)
          forget(old)
        end
        local extra = redis.call('ZCARD', completed) - keep
        if extra > 0 then
          forget(redis.call('ZRANGE', completed, 0, extra - 1))
          redis.call('ZREMRANGEBYRANK', completed, 0, extra - 1)
        end
        return done
        """)

    /// KEYS[1]: prefix. ARGV: lease token, id, error, backoff base ms, backoff max ms,
    /// jitter (-1..1 times the configured spread, drawn by the caller), keep count, keep ms.
    /// Retries with exponential backoff (base * 2^(attempt-1), capped, +-jitter) or, after
    /// the last attempt, dead-letters. Returns 'retry' with the delay, 'dead', or 'stale'.
    static let fail = RedisScript(name: "queue_fail", source: prelude + "\n" + """
        local token, id, message = ARGV[1], ARGV[2], ARGV[3]
        local base, cap, jitter = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
        local keep, keep_ms = tonumber(ARGV[7]), tonumber(ARGV[8])
        if not held_by(token, {id})[1] then return {'stale', 0} end
        local now = now_ms()
        unlease({id})
        local m = (tonumber(redis.call('HGET', P .. ':meta', id)) or 10) + 100000000
        local attempts, max = meta_attempts(m), meta_max(m)
        count_attempts({id}, {m})
        redis.call('HSET', P .. ':error', id, message)
        if attempts >= max then
          redis.call('ZADD', P .. ':dead', now, id)
          redis.call('HINCRBY', P .. ':stats', 'dead', 1)
          return {'dead', 0}
        end
        local delay = math.min(base * 2 ^ (attempts - 1), cap)
        delay = math.floor(delay * (1 + jitter))
        redis.call('ZADD', P .. ':delayed', now + delay, id)
        local failed = P .. ':failed'
        redis.call('ZADD', failed, now, id)
        redis.call('HINCRBY', P .. ':stats', 'failed', 1)
        local extra = redis.call('ZCARD', failed) - keep
        if extra > 0 then redis.call('ZREMRANGEBYRANK', failed, 0, extra - 1) end
        redis.call('ZREMRANGEBYSCORE', failed, '-inf', now - keep_ms)
        return {'retry', delay}
        """)

    /// The ids of ARGV[first...] that `token` holds, once each, leaving :active (their attempt
    /// was never counted); with their metas.
    private static let handBack = """
        local function hand_back(token, first)
          local ids = {}
          for i = first, #ARGV do ids[#ids + 1] = ARGV[i] end
          local started = held_by(token, ids)
          local mine, taken = {}, {}
          for i = 1, #ids do
            if started[i] and not taken[ids[i]] then
              taken[ids[i]] = true
              mine[#mine + 1] = ids[i]
            end
          end
          if #mine == 0 then return mine, {} end
          unlease(mine)
          local metas = many('HMGET', P .. ':meta', mine)
          for i = 1, #mine do metas[i] = tonumber(metas[i]) or 10 end
          return mine, metas
        end
        """

    /// KEYS[1]: prefix. ARGV: lease token, then ids. Hands claimed jobs back unprocessed (a
    /// worker shutting down): they wait again at once and the attempt is not counted.
    static let release = RedisScript(name: "queue_release", source: prelude + "\n" + handBack + "\n" + """
        local mine, metas = hand_back(ARGV[1], 2)
        wait(mine, metas)
        return #mine
        """)

    /// KEYS[1]: prefix. ARGV: lease token, delay ms, then ids. Puts claimed jobs back as
    /// delayed without counting the attempt: a dependency was down, not the job at fault.
    static let postpone = RedisScript(name: "queue_postpone", source: prelude + "\n" + handBack + "\n" + """
        local mine = hand_back(ARGV[1], 3)
        local due, delayed = now_ms() + tonumber(ARGV[2]), {}
        for i = 1, #mine do
          delayed[2 * i - 1], delayed[2 * i] = due, mine[i]
        end
        batch('ZADD', P .. ':delayed', delayed)
        redis.call('HINCRBY', P .. ':stats', 'postponed', #mine)
        return #mine
        """)

    /// KEYS[1]: prefix. Returns the sizes of every set, the totals, and the jobs completed in
    /// the last 60 whole seconds, as a flat list of names and numbers.
    static let stats = RedisScript(name: "queue_stats", source: prelude + "\n" + """
        local second = math.floor(now_ms() / 1000)
        local seconds = {}
        for s = second - 60, second - 1 do seconds[#seconds + 1] = P .. ':throughput:' .. s end
        local recent = 0
        for _, count in ipairs(redis.call('MGET', unpack(seconds))) do recent = recent + (tonumber(count) or 0) end
        local waiting = 0
        for p = 0, 9 do waiting = waiting + redis.call('LLEN', P .. ':waiting:' .. p) end
        local out = {
          'completed_last_minute', recent,
          'waiting', waiting,
          'delayed', redis.call('ZCARD', P .. ':delayed'),
          'active', redis.call('ZCARD', P .. ':active'),
          'dead_now', redis.call('ZCARD', P .. ':dead'),
        }
        local totals = redis.call('HGETALL', P .. ':stats')
        for i = 1, #totals do out[#out + 1] = totals[i] end
        return out
        """)

    /// KEYS[1]: prefix. ARGV: id. Returns the job's state (the set holding it, else waiting),
    /// attempts (counting a running or completed one) and last error, or nil when the id is
    /// unknown or trimmed.
    static let record = RedisScript(name: "queue_record", source: prelude + "\n" + """
        local id = ARGV[1]
        local m = tonumber(redis.call('HGET', P .. ':meta', id))
        if not m then return nil end
        local state, attempts = 'waiting', meta_attempts(m)
        for _, set in ipairs({'active', 'delayed', 'completed', 'dead'}) do
          if redis.call('ZSCORE', P .. ':' .. set, id) then state = set end
        end
        if state == 'active' or state == 'completed' then attempts = attempts + 1 end
        return {state, attempts, redis.call('HGET', P .. ':error', id)}
        """)
}
