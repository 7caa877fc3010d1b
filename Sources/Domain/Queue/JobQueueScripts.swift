/// Every state change of a job queue, each one atomic Lua script.
///
/// Keys of one queue share the hash tag `{q:<name>}` (one Redis Cluster slot):
///   :waiting    ZSET  job id -> priority band * 1e14 + enqueue sequence (ZPOPMIN = highest
///                     priority first, FIFO within a priority)
///   :delayed    ZSET  job id -> ms when it becomes due (delayed jobs, retry backoff)
///   :active     ZSET  job id -> ms when its lease expires
///   :completed  ZSET  job id -> ms finished      (kept by count and age)
///   :failed     ZSET  job id -> ms of last failure (failures that were retried)
///   :dead       ZSET  job id -> ms dead-lettered (after the last attempt)
///   :job:<id>   HASH  payload, priority, attempts, max_attempts, state, lease, times, error
///   :seq        counter for FIFO order;  :stats HASH totals (completed, failed, dead, ...)
/// Times come from Redis' clock (`TIME`), so instances with skewed clocks agree on leases.
enum JobQueueScripts {
    /// Shared Lua prelude: the clock and how a job re-enters :waiting.
    private static let prelude = """
        local function now_ms()
          local t = redis.call('TIME')
          return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        end
        local function wait(prefix, id, priority)
          local seq = redis.call('INCR', prefix .. ':seq')
          redis.call('ZADD', prefix .. ':waiting', (9 - priority) * 100000000000000 + seq, id)
          redis.call('HSET', prefix .. ':job:' .. id, 'state', 'waiting')
        end
        """

    /// KEYS[1]: the queue prefix `{q:name}`. ARGV: count, then per job: id, payload,
    /// priority (0-9), delay ms, max attempts. Returns the ids that were new (an id already
    /// known is a duplicate: ignored, which makes enqueueing idempotent).
    static let enqueue = RedisScript(name: "queue_enqueue", source: prelude + "\n" + """
        local prefix = KEYS[1]
        local now = now_ms()
        local added = {}
        local n = tonumber(ARGV[1])
        -- One sequence range for the batch keeps FIFO order at one INCRBY per call.
        local seq = redis.call('INCRBY', prefix .. ':seq', n) - n
        local waiting, delayed = prefix .. ':waiting', prefix .. ':delayed'
        for i = 0, n - 1 do
          local base = 2 + i * 5
          local id = ARGV[base]
          local key = prefix .. ':job:' .. id
          if redis.call('EXISTS', key) == 0 then
            local priority, delay = tonumber(ARGV[base + 2]), tonumber(ARGV[base + 3])
            local state = 'waiting'
            if delay > 0 then state = 'delayed' end
            redis.call('HSET', key, 'payload', ARGV[base + 1], 'priority', priority, 'attempts', 0,
              'max_attempts', ARGV[base + 4], 'enqueued_at', now, 'state', state)
            if delay > 0 then
              redis.call('ZADD', delayed, now + delay, id)
            else
              redis.call('ZADD', waiting, (9 - priority) * 100000000000000 + seq + i + 1, id)
            end
            added[#added + 1] = id
          end
        end
        redis.call('HINCRBY', prefix .. ':stats', 'enqueued', #added)
        return added
        """)

    /// KEYS[1]: prefix. ARGV: mark ttl ms, job count, then per job: id, payload, priority,
    /// max attempts, mark count, marks... Marks each item of a job as seen (`SET NX PX`)
    /// and enqueues the jobs, in one atomic step: an item is never marked without its job
    /// being queued. Returns the marks that were new (the others were seen within the ttl).
    static let enqueueMarked = RedisScript(name: "queue_enqueue_marked", source: prelude + "\n" + """
        local prefix = KEYS[1]
        local ttl, jobs = ARGV[1], tonumber(ARGV[2])
        local now = now_ms()
        local fresh = {}
        local at = 3
        for _ = 1, jobs do
          local id, payload, priority, max = ARGV[at], ARGV[at + 1], tonumber(ARGV[at + 2]), ARGV[at + 3]
          local marks = tonumber(ARGV[at + 4])
          local new_here = 0
          for i = at + 5, at + 4 + marks do
            if redis.call('SET', prefix .. ':seen:' .. ARGV[i], '1', 'NX', 'PX', ttl) then
              fresh[#fresh + 1] = ARGV[i]
              new_here = new_here + 1
            end
          end
          at = at + 5 + marks
          local key = prefix .. ':job:' .. id
          if new_here > 0 and redis.call('EXISTS', key) == 0 then
            redis.call('HSET', key, 'payload', payload, 'priority', priority, 'attempts', 0,
              'max_attempts', max, 'enqueued_at', now)
            wait(prefix, id, priority)
            redis.call('HINCRBY', prefix .. ':stats', 'enqueued', 1)
          end
        end
        return fresh
        """)

    /// KEYS[1]: prefix. ARGV: max jobs, lease ms, lease token.
    /// First moves due delayed jobs to :waiting and expired leases back (a crashed worker's
    /// jobs; the lost attempt counts, and past the last one the job is dead-lettered), then
    /// claims up to max jobs. Returns {id, payload, attempts, max_attempts} per job.
    static let claim = RedisScript(name: "queue_claim", source: prelude + "\n" + """
        local prefix = KEYS[1]
        local max, lease, token = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
        local now = now_ms()
        local due = redis.call('ZRANGEBYSCORE', prefix .. ':delayed', '-inf', now, 'LIMIT', 0, 1000)
        for _, id in ipairs(due) do
          redis.call('ZREM', prefix .. ':delayed', id)
          wait(prefix, id, tonumber(redis.call('HGET', prefix .. ':job:' .. id, 'priority')) or 0)
        end
        local expired = redis.call('ZRANGEBYSCORE', prefix .. ':active', '-inf', now, 'LIMIT', 0, 1000)
        for _, id in ipairs(expired) do
          local key = prefix .. ':job:' .. id
          redis.call('ZREM', prefix .. ':active', id)
          redis.call('HINCRBY', prefix .. ':stats', 'lease_expired', 1)
          local attempts = tonumber(redis.call('HGET', key, 'attempts')) or 0
          if attempts >= (tonumber(redis.call('HGET', key, 'max_attempts')) or 1) then
            redis.call('ZADD', prefix .. ':dead', now, id)
            redis.call('HSET', key, 'state', 'dead', 'error', 'lease expired on the last attempt', 'finished_at', now)
            redis.call('HINCRBY', prefix .. ':stats', 'dead', 1)
          else
            wait(prefix, id, tonumber(redis.call('HGET', key, 'priority')) or 0)
          end
        end
        local popped = redis.call('ZPOPMIN', prefix .. ':waiting', max)
        local jobs, leases = {}, {}
        for i = 1, #popped, 2 do
          local id = popped[i]
          local key = prefix .. ':job:' .. id
          local fields = redis.call('HMGET', key, 'payload', 'max_attempts', 'attempts')
          local attempts = (tonumber(fields[3]) or 0) + 1
          redis.call('HSET', key, 'attempts', attempts, 'state', 'active', 'lease', token, 'claimed_at', now)
          leases[#leases + 1] = now + lease
          leases[#leases + 1] = id
          jobs[#jobs + 1] = {id, fields[1], attempts, tonumber(fields[2])}
        end
        if #leases > 0 then redis.call('ZADD', prefix .. ':active', unpack(leases)) end
        return jobs
        """)

    /// KEYS[1]: prefix. ARGV: lease token, keep count, keep ms, then ids. Completes the jobs
    /// this lease still holds (a job whose lease expired and was claimed again is not ours),
    /// records processing time, and trims completed records by count and age.
    /// Returns how many were completed.
    static let complete = RedisScript(name: "queue_complete", source: prelude + "\n" + """
        local prefix = KEYS[1]
        local token, keep, keep_ms = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
        local now = now_ms()
        local done, busy, finished = 0, 0, {}
        local active, completed = prefix .. ':active', prefix .. ':completed'
        for i = 4, #ARGV do
          local id = ARGV[i]
          local key = prefix .. ':job:' .. id
          local fields = redis.call('HMGET', key, 'lease', 'claimed_at')
          if fields[1] == token and redis.call('ZREM', active, id) == 1 then
            busy = busy + (now - (tonumber(fields[2]) or now))
            redis.call('HSET', key, 'state', 'completed', 'finished_at', now)
            redis.call('HDEL', key, 'lease', 'payload')
            -- The record lives at most keep_ms (and is dropped earlier past keep records).
            redis.call('PEXPIRE', key, keep_ms)
            finished[#finished + 1] = now
            finished[#finished + 1] = id
            done = done + 1
          end
        end
        if done > 0 then redis.call('ZADD', completed, unpack(finished)) end
        redis.call('HINCRBY', prefix .. ':stats', 'completed', done)
        redis.call('HINCRBY', prefix .. ':stats', 'processing_ms', busy)
        local second = prefix .. ':throughput:' .. math.floor(now / 1000)
        redis.call('INCRBY', second, done)
        redis.call('EXPIRE', second, 120)
        redis.call('ZREMRANGEBYSCORE', completed, '-inf', now - keep_ms)
        local extra = redis.call('ZCARD', completed) - keep
        if extra > 0 then
          local oldest = redis.call('ZRANGE', completed, 0, extra - 1)
          local keys = {}
          for _, id in ipairs(oldest) do keys[#keys + 1] = prefix .. ':job:' .. id end
          redis.call('DEL', unpack(keys))
          redis.call('ZREMRANGEBYRANK', completed, 0, extra - 1)
        end
        return done
        """)

    /// KEYS[1]: prefix. ARGV: lease token, id, error, backoff base ms, backoff max ms,
    /// jitter (0..1, drawn by the caller), keep count, keep ms.
    /// Retries with exponential backoff (base * 2^(attempt-1), capped, +-jitter) or, after
    /// the last attempt, dead-letters. Returns 'retry' with the delay, 'dead', or 'stale'.
    static let fail = RedisScript(name: "queue_fail", source: prelude + "\n" + """
        local prefix = KEYS[1]
        local token, id, message = ARGV[1], ARGV[2], ARGV[3]
        local base, cap, jitter = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
        local keep, keep_ms = tonumber(ARGV[7]), tonumber(ARGV[8])
        local key = prefix .. ':job:' .. id
        if redis.call('HGET', key, 'lease') ~= token or redis.call('ZREM', prefix .. ':active', id) == 0 then
          return {'stale', 0}
        end
        local now = now_ms()
        local attempts = tonumber(redis.call('HGET', key, 'attempts'))
        local max = tonumber(redis.call('HGET', key, 'max_attempts'))
        redis.call('HDEL', key, 'lease')
        redis.call('HSET', key, 'error', message, 'failed_at', now)
        if attempts >= max then
          redis.call('ZADD', prefix .. ':dead', now, id)
          redis.call('HSET', key, 'state', 'dead', 'finished_at', now)
          redis.call('HINCRBY', prefix .. ':stats', 'dead', 1)
          return {'dead', 0}
        end
        local delay = math.min(base * 2 ^ (attempts - 1), cap)
        delay = math.floor(delay * (1 + jitter))
        redis.call('ZADD', prefix .. ':delayed', now + delay, id)
        redis.call('HSET', key, 'state', 'delayed')
        redis.call('ZADD', prefix .. ':failed', now, id)
        redis.call('HINCRBY', prefix .. ':stats', 'failed', 1)
        local extra = redis.call('ZCARD', prefix .. ':failed') - keep
        if extra > 0 then redis.call('ZREMRANGEBYRANK', prefix .. ':failed', 0, extra - 1) end
        redis.call('ZREMRANGEBYSCORE', prefix .. ':failed', '-inf', now - keep_ms)
        return {'retry', delay}
        """)

    /// KEYS[1]: prefix. ARGV: lease token, then ids. Hands claimed jobs back unprocessed (a
    /// worker shutting down): they wait again at once and the attempt is not counted.
    static let release = RedisScript(name: "queue_release", source: prelude + "\n" + """
        local prefix = KEYS[1]
        local released = 0
        for i = 2, #ARGV do
          local id = ARGV[i]
          local key = prefix .. ':job:' .. id
          if redis.call('HGET', key, 'lease') == ARGV[1] and redis.call('ZREM', prefix .. ':active', id) == 1 then
            redis.call('HINCRBY', key, 'attempts', -1)
            redis.call('HDEL', key, 'lease')
            wait(prefix, id, tonumber(redis.call('HGET', key, 'priority')) or 0)
            released = released + 1
          end
        end
        return released
        """)

    /// KEYS[1]: prefix. ARGV: lease token, delay ms, then ids. Puts claimed jobs back as
    /// delayed without counting the attempt: a dependency was down, not the job at fault.
    static let postpone = RedisScript(name: "queue_postpone", source: prelude + "\n" + """
        local prefix = KEYS[1]
        local now = now_ms()
        local postponed = 0
        for i = 3, #ARGV do
          local id = ARGV[i]
          local key = prefix .. ':job:' .. id
          if redis.call('HGET', key, 'lease') == ARGV[1] and redis.call('ZREM', prefix .. ':active', id) == 1 then
            redis.call('HINCRBY', key, 'attempts', -1)
            redis.call('HDEL', key, 'lease')
            redis.call('HSET', key, 'state', 'delayed')
            redis.call('ZADD', prefix .. ':delayed', now + tonumber(ARGV[2]), id)
            postponed = postponed + 1
          end
        end
        redis.call('HINCRBY', prefix .. ':stats', 'postponed', postponed)
        return postponed
        """)

    /// KEYS[1]: prefix. Returns the sizes of every set, the totals, and the jobs completed in
    /// the last 60 whole seconds, as a flat list of names and numbers.
    static let stats = RedisScript(name: "queue_stats", source: prelude + "\n" + """
        local prefix = KEYS[1]
        local second = math.floor(now_ms() / 1000)
        local recent = 0
        for s = second - 60, second - 1 do
          recent = recent + (tonumber(redis.call('GET', prefix .. ':throughput:' .. s)) or 0)
        end
        local out = {
          'completed_last_minute', recent,
          'waiting', redis.call('ZCARD', prefix .. ':waiting'),
          'delayed', redis.call('ZCARD', prefix .. ':delayed'),
          'active', redis.call('ZCARD', prefix .. ':active'),
          'dead_now', redis.call('ZCARD', prefix .. ':dead'),
        }
        local totals = redis.call('HGETALL', prefix .. ':stats')
        for i = 1, #totals do out[#out + 1] = totals[i] end
        return out
        """)
}
