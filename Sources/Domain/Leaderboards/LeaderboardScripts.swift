import Storage
/// A board in Redis, and the scripts that read and change it atomically.
///
/// Keys of one board share the hash tag `{lb:<board>}` (one Redis Cluster slot):
///   :z        ZSET  BoardMember.encoded -> score (reads go high to low; ties to the earlier)
///   :m        HASH  user id -> their current member in :z
///   :ready    set once the board was loaded from Postgres (with a TTL, so every board is
///             re-read from the truth periodically even if an update was lost); its value
///             is new with every load, naming that incarnation of the board (`BoardMirror`)
///   :v        the board's version: +1 with every improvement merged (`BoardChange`)
///   :r        latest-score boards only: user id -> revision of their entry (`+Latest`)
///   :z:next / :m:next / :r:next   the board being rebuilt; :building marks a rebuild in progress
///
/// On best-score boards every write is a max-merge of (score, earlier time) per user; on
/// latest-score boards a write replaces the user's entry when its revision is newer. Either
/// way submitting, loading from Postgres and replaying are commutative and idempotent, so a
/// rebuild racing with live submits loses nothing (submits go to both the live board and the
/// one being built).
enum LeaderboardScripts {
    /// Shared Lua: merge one (user, score, member) into a board's :z/:m if it is better.
    private static let merge = """
        local function better(score, member, old_score, old_member)
          if score ~= old_score then return score > old_score end
          return member > old_member  -- same score: the inverted time prefix sorts earlier higher
        end
        local function merge(z, m, user, score, member)
          local old = redis.call('HGET', m, user)
          if old then
            local old_score = tonumber(redis.call('ZSCORE', z, old))
            if old_score and not better(score, member, old_score, old) then return 0 end
            redis.call('ZREM', z, old)
          end
          redis.call('ZADD', z, score, member)
          redis.call('HSET', m, user, member)
          return 1
        end

        """

    /// KEYS: z, m, ready, building, z:next, m:next, v. ARGV: user, score, member.
    /// Returns the board's new version when it improved the user's best, 0 when not, -1 when
    /// the board is not loaded (the caller loads it from Postgres). A rebuild under way gets the
    /// write first, loaded or not: a first load (another instance's) may have read this user's
    /// row before the write committed, and the caller then only waits for that load.
    static let submit = RedisScript(name: "leaderboard_submit", source: merge + """
        local score = tonumber(ARGV[2])
        if redis.call('EXISTS', KEYS[4]) == 1 then merge(KEYS[5], KEYS[6], ARGV[1], score, ARGV[3]) end
        if redis.call('EXISTS', KEYS[3]) == 0 then return -1 end
        if merge(KEYS[1], KEYS[2], ARGV[1], score, ARGV[3]) == 0 then return 0 end
        return redis.call('INCR', KEYS[7])
        """)

    /// KEYS: z, m, ready. ARGV: user, neighbours.
    /// Returns {-1} when not loaded, {0, total} when the user has no score, else
    /// {rank, total, first0, {member1, score1, member2, score2, ...}} for the window around the
    /// user (rank 1-based, first0 the 0-based rank of member1). The window goes back as
    /// ZREVRANGE returned it, nested: no copy into a flat table per call.
    static let rank = RedisScript(name: "leaderboard_rank", source: """
        if redis.call('EXISTS', KEYS[3]) == 0 then return {-1} end
        local total = redis.call('ZCARD', KEYS[1])
        local member = redis.call('HGET', KEYS[2], ARGV[1])
        if not member then return {0, total} end
        local rank = redis.call('ZREVRANK', KEYS[1], member)
        if not rank then return {0, total} end
        local n = tonumber(ARGV[2])
        local first = rank - n
        if first < 0 then first = 0 end
        return {rank + 1, total, first, redis.call('ZREVRANGE', KEYS[1], first, rank + n, 'WITHSCORES')}
        """)

    /// KEYS: z, ready. ARGV: limit, cursor score ('' for the first page), cursor member.
    /// Returns {-1} when not loaded, else {total, first_rank0, {member1, score1, ...}}.
    /// The cursor is the last entry of the previous page: the page starts right after it in
    /// board order, even if entries above it changed meanwhile (no repeats, no skips of
    /// unchanged entries).
    static let top = RedisScript(name: "leaderboard_top", source: """
        if redis.call('EXISTS', KEYS[2]) == 0 then return {-1} end
        local total = redis.call('ZCARD', KEYS[1])
        local limit = tonumber(ARGV[1])
        local start = 0
        if ARGV[2] ~= '' then
          local score, member = tonumber(ARGV[2]), ARGV[3]
          local here = redis.call('ZSCORE', KEYS[1], member)
          if here and tonumber(here) == score then
            start = redis.call('ZREVRANK', KEYS[1], member) + 1
          else
            -- The cursor entry moved: count entries ordered before (score, member).
            start = redis.call('ZCOUNT', KEYS[1], '(' .. ARGV[2], '+inf')
            local same = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[2], ARGV[2])
            for _, other in ipairs(same) do
              if other > member then start = start + 1 end
            end
          end
        end
        return {total, start, redis.call('ZREVRANGE', KEYS[1], start, start + limit - 1, 'WITHSCORES')}
        """)

    /// KEYS: building, z:next, m:next, r:next. ARGV: lock ttl ms. Starts a rebuild: returns 0
    /// when one is already running (another instance loads it), else clears the staging keys.
    static let beginLoad = RedisScript(name: "leaderboard_begin_load", source: """
        if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) == false then return 0 end
        redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
        return 1
        """)

    /// KEYS: z:next, m:next. ARGV: triples of user, score, member from Postgres.
    static let loadChunk = RedisScript(name: "leaderboard_load_chunk", source: merge + """
        for i = 1, #ARGV, 3 do
          merge(KEYS[1], KEYS[2], ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2])
        end
        return #ARGV / 3
        """)

    /// KEYS: z:next, m:next, z, m, ready, building, r:next, r. ARGV: ready ttl ms, the new
    /// incarnation. Swaps the rebuilt board in (with its revisions on a latest-score board;
    /// a best-score board has none) and marks it loaded.
    static let finishLoad = RedisScript(name: "leaderboard_finish_load", source: """
        if redis.call('EXISTS', KEYS[1]) == 1 then
          redis.call('RENAME', KEYS[1], KEYS[3])
          redis.call('RENAME', KEYS[2], KEYS[4])
          if redis.call('EXISTS', KEYS[7]) == 1 then
            redis.call('RENAME', KEYS[7], KEYS[8])
          else
            redis.call('DEL', KEYS[8])
          end
        else
          redis.call('DEL', KEYS[3], KEYS[4], KEYS[8])
        end
        redis.call('SET', KEYS[5], ARGV[2], 'PX', ARGV[1])
        redis.call('DEL', KEYS[6])
        return 1
        """)
}
