import Storage
/// `Rank` read from Redis with plain commands instead of a script.
///
/// On the Redis 7.0 of this platform the `leaderboard_rank` script cost about 51 us of Redis'
/// single thread per call, of which its five commands were 27 (ZREVRANK and ZREVRANGE on a
/// board of a million users about 10 and 14): the rest was running Lua and converting the
/// window in and out of it. Redis was what bounded `Rank`. Read-only, the answer does not
/// need the script's atomicity: three pipelined round trips read the same values, and the
/// window is checked to hold the user at the rank read a moment before. A write that moved
/// the user or the window in between fails the check and the read starts over; after a few
/// tries (a user whose neighbourhood is rewritten without pause) the script answers atomically.
extension LeaderboardStore {
    /// Reads before falling back to the script.
    static let rankReadAttempts = 3

    func rankFromRedis(_ board: BoardID, user: String, neighbours: Int, attempts: Int = rankReadAttempts) async throws -> BoardReply<RankWindow?> {
        let keys = keys(board)
        let z = keys.z  // each key is built on access: once per call here
        for _ in 0..<attempts {
            // 1. Loaded? How many users? The user's member (their best, encoded with its time).
            let head = try await redis.pipeline([
                RedisCommand("EXISTS", keys.ready), RedisCommand("ZCARD", z), RedisCommand("HGET", keys.m, RedisArgument(user)),
            ])
            for reply in head { if case .error(let message) = reply { throw RedisError(.server, message) } }
            if head[0].int != 1 { return .notLoaded }
            guard let total = head[1].int else { throw RedisError(.unexpectedReply, "ZCARD returned \(head[1])") }
            guard let member = head[2].bytes else { return .answer(nil) }  // no score on this board
            // 2. The member's 0-based rank, best first; nil when a better score replaced it since.
            guard let rank0 = try await redis.send(RedisCommand("ZREVRANK", z, RedisArgument(bytes: member))).int else { continue }
            // 3. The window around it, checked to hold the user at that rank.
            let first = max(0, Int(rank0) - neighbours)
            let window = try await redis.send(
                RedisCommand("ZREVRANGE", z, RedisArgument(first), RedisArgument(Int(rank0) + neighbours), "WITHSCORES")
            ) { reply in
                Self.decodeWindow(reply, firstRank: first + 1, rank: Int(rank0) + 1, user: user, total: Int(total))
            }
            if let window { return .answer(window) }
        }
        return try await redis.run(
            LeaderboardScripts.rank, keys: [z, keys.m, keys.ready],
            arguments: [RedisArgument(user), RedisArgument(neighbours)], decoding: Self.decodeRank)
    }

    /// A ZREVRANGE ... WITHSCORES window starting at `firstRank`, split around `rank`; nil
    /// unless `user` is the entry at `rank` (the board moved between the reads).
    static func decodeWindow(_ flat: RESPReply, firstRank: Int, rank: Int, user: String, total: Int) -> RankWindow? {
        guard let window = window(flat, firstRank: firstRank, rank: rank, total: total),
            window.entry.userID == user, window.above.count == rank - firstRank
        else { return nil }
        return window
    }
}
