import Storage
/// The writes of latest-score boards (`BoardID.keepsLatest`: quiz boards), whose users' scores
/// may go down.
///
/// A write carries its row's `leaderboard_scores.revision`, taken from one sequence while the
/// writer held the row's lock, so a user's revisions grow in commit order. A copy of the board
/// (the live sorted set, the one being rebuilt) keeps a write only when its revision is newer
/// than the one it holds for the user (`:r`): then it replaces the user's entry whatever the
/// score. Writes applied in any order, any number of times, leave each copy at the user's
/// newest row, as max-merges do on best-score boards. Revisions are compared as Lua numbers,
/// exact up to 2^53 (a sequence does not get there); the hash stores the text as given.
extension LeaderboardScripts {
    /// Shared Lua: replace one user's entry in a board's :z/:m/:r when `revision` is newer.
    private static let replace = """
        local function replace(z, m, r, user, score, member, revision)
          local stored = redis.call('HGET', r, user)
          if stored and tonumber(stored) >= tonumber(revision) then return 0 end
          local old = redis.call('HGET', m, user)
          if old then redis.call('ZREM', z, old) end
          redis.call('ZADD', z, score, member)
          redis.call('HSET', m, user, member)
          redis.call('HSET', r, user, revision)
          return 1
        end

        """

    /// KEYS: z, m, r, ready, building, z:next, m:next, r:next, v. ARGV: user, score, member,
    /// revision. Returns the board's new version when it replaced the user's entry, 0 when the
    /// board holds this revision or a newer one, -1 when the board is not loaded (the caller
    /// loads it from Postgres). A rebuild under way gets the write first, loaded or not: a
    /// first load may have read this user's older row already, and the caller then only waits
    /// for that load.
    static let submitLatest = RedisScript(name: "leaderboard_submit_latest", source: replace + """
        local score = tonumber(ARGV[2])
        if redis.call('EXISTS', KEYS[5]) == 1 then replace(KEYS[6], KEYS[7], KEYS[8], ARGV[1], score, ARGV[3], ARGV[4]) end
        if redis.call('EXISTS', KEYS[4]) == 0 then return -1 end
        if replace(KEYS[1], KEYS[2], KEYS[3], ARGV[1], score, ARGV[3], ARGV[4]) == 0 then return 0 end
        return redis.call('INCR', KEYS[9])
        """)

    /// KEYS: z:next, m:next, r:next. ARGV: quadruples of user, score, member, revision from
    /// Postgres. A row read before a live write committed loses to that write's newer revision.
    static let loadLatestChunk = RedisScript(name: "leaderboard_load_latest_chunk", source: replace + """
        for i = 1, #ARGV, 4 do
          replace(KEYS[1], KEYS[2], KEYS[3], ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2], ARGV[i + 3])
        end
        return #ARGV / 4
        """)
}
