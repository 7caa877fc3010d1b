public import Storage
import Codec
import Foundation
public import Logging

/// The leaderboards: Postgres (`leaderboard_scores`) is the truth, Redis sorted sets answer
/// reads.
///
/// A score is committed to Postgres first, with a pending merge naming it
/// (`leaderboard_pending_merges`), then merged into the board's sorted set and announced on
/// pub/sub (for `Watch` and the mirrors of every instance), and the pending merge is deleted.
/// A merge lost after the commit (Redis down, or the writer died in between) leaves its row:
/// every instance's `LeaderboardRepair` sees the board behind within `repairAfter` and reads it
/// from Postgres meanwhile, and one of them merges the named users' best scores as soon as Redis
/// answers. A board missing from Redis (new, evicted by a restart, or past its `readyTTL`) is
/// rebuilt from Postgres (the primary, never the read replica: see `rebuildIfFree`) by one instance while the others
/// wait for it; writes during the rebuild land in both copies, and every write is a max-merge,
/// (or, on latest-score boards, a replace by revision), so nothing is lost. With Redis down, reads are answered from Postgres (slower, same
/// results). `Rank` and `Top` on a board held in this process (`BoardMirrors`) are answered
/// from memory.
public final class LeaderboardStore: Sendable {
    public struct Configuration: Sendable {
        /// A loaded board is re-read from Postgres after this long, bounding how long an
        /// update lost between Postgres and Redis (a crash in between) stays invisible.
        public var readyTTL: Duration
        /// Rows per script call when rebuilding.
        public var loadChunk: Int
        /// `Rank` answers are reused for this long (hot users asking repeatedly); 0 disables.
        public var rankCacheTTL: Duration
        public var rankCacheCapacity: Int
        /// How long a rebuild may hold the board's build lock.
        public var buildLockTTL: Duration
        /// Prefix of every Redis key and channel (one deployment per Redis by default).
        public var namespace: String = "lb"
        /// A pending merge this old was lost: its boards are behind and get repaired. Writers
        /// confirm theirs within milliseconds, deleted at the next sweep.
        public var repairAfter: Duration = .seconds(2)
        /// How often `LeaderboardRepair` reads which boards are behind and repairs them.
        public var repairInterval: Duration = .milliseconds(500)

        /// Boards re-read every 6 h, rebuilt 2,000 rows per call, rank answers cached 250 ms.
        public static var defaults: Configuration {
            Configuration(readyTTL: .seconds(6 * 3600), loadChunk: 2000, rankCacheTTL: .milliseconds(250),
                          rankCacheCapacity: 100_000, buildLockTTL: .seconds(120))
        }

        public init(readyTTL: Duration, loadChunk: Int, rankCacheTTL: Duration, rankCacheCapacity: Int, buildLockTTL: Duration) {
            self.readyTTL = readyTTL
            self.loadChunk = loadChunk
            self.rankCacheTTL = rankCacheTTL
            self.rankCacheCapacity = rankCacheCapacity
            self.buildLockTTL = buildLockTTL
        }
    }

    public let configuration: Configuration
    let database: PostgresDatabase
    let redis: RedisClient
    let logger: Logger
    let rankCache: RankCache
    let mirrors: BoardMirrors?
    /// Boards whose Redis copy is behind the truth (read from Postgres until repaired).
    let behind: BoardsBehind

    /// `mirrors`, when given (and run as a service), answers `Rank` on the boards it holds.
    public init(database: PostgresDatabase, redis: RedisClient, mirrors: BoardMirrors? = nil, configuration: Configuration = .defaults,
                logger: Logger = Logger(label: "tally.leaderboards")) {
        self.database = database
        self.redis = redis
        precondition(mirrors.map { $0.configuration.namespace == configuration.namespace } ?? true,
                     "the board mirrors must read the store's Redis namespace")
        self.mirrors = mirrors
        self.configuration = configuration
        self.logger = logger
        self.rankCache = RankCache(ttl: configuration.rankCacheTTL, capacity: configuration.rankCacheCapacity)
        self.behind = BoardsBehind(repairAfter: configuration.repairAfter)
    }

    func keys(_ board: BoardID) -> BoardKeys { BoardKeys(board, namespace: configuration.namespace) }

    // MARK: writes

    /// Merges scores (one transaction), then into Redis; returns the updates that improved a
    /// best score. `submissionID` makes a retried call return the first call's answer.
    /// Best-score boards only: throws `invalidArgument` for a latest-score board.
    @discardableResult
    public func submit(_ updates: [ScoreUpdate], submissionID: String? = nil, deadline: ContinuousClock.Instant? = nil) async throws -> [ScoreUpdate] {
        try Self.refuseLatestBoards(updates)
        // Scores merge idempotently anyway; the submission id makes a retry *answer* like the
        // first call (improved or not) for a day.
        let remembered = submissionID.flatMap { id in updates.first.map { keys($0.board).submission(id) } }
        if let remembered, let answer = try? await redis.send(RedisCommand("GET", remembered)), let text = answer.string {
            return text == "1" ? updates : []
        }
        let recorded = try await database.withTransaction(deadline: deadline) { connection in
            try await Self.record(updates, on: connection)
        }
        await publish(recorded)
        if let remembered {
            _ = try? await redis.send(RedisCommand("SET", remembered, recorded.improved.isEmpty ? "0" : "1", "EX", 86_400))
        }
        return recorded.improved
    }

    /// Writes scores to `leaderboard_scores` on an open transaction (the events worker uses
    /// its own, so an event and its score commit together), with the pending merge naming
    /// those that improved. Call `publish` after the commit. Best-score boards only: throws
    /// `invalidArgument` for a latest-score board.
    public static func record(_ updates: [ScoreUpdate], on connection: PostgresConnection) async throws -> RecordedScores {
        try refuseLatestBoards(updates)
        guard !updates.isEmpty else { return RecordedScores() }
        // One statement for the batch: unnest the arrays, keep each user's best of the batch,
        // upsert where it beats the stored best (ties: the earlier achievement), and record
        // what improved as one pending merge.
        let rows = try await connection.query(
            """
            WITH input AS (
              SELECT DISTINCT ON (board, user_id) board, user_id, score, achieved_at
              FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[]) AS u(board, user_id, score, at_ms)
                CROSS JOIN LATERAL (SELECT to_timestamp(at_ms / 1000.0) AS achieved_at) t
              ORDER BY board, user_id, score DESC, achieved_at ASC
            ),
            improved AS (
              INSERT INTO leaderboard_scores AS s (board, user_id, score, achieved_at)
              SELECT board, user_id, score, achieved_at FROM input
              ON CONFLICT (board, user_id) DO UPDATE SET score = EXCLUDED.score, achieved_at = EXCLUDED.achieved_at
                WHERE EXCLUDED.score > s.score OR (EXCLUDED.score = s.score AND EXCLUDED.achieved_at < s.achieved_at)
              RETURNING board, user_id, score, (extract(epoch FROM achieved_at) * 1000)::bigint AS at_ms
            ),
            pending AS (
              INSERT INTO leaderboard_pending_merges (boards, user_ids)
              SELECT array_agg(board), array_agg(user_id) FROM improved HAVING count(*) > 0
              RETURNING id
            )
            SELECT board, user_id, score, at_ms, (SELECT id FROM pending) FROM improved
            """,
            [PostgresArray(updates.map { $0.board.description }), PostgresArray(updates.map(\.userID)),
             PostgresArray(updates.map(\.score)), PostgresArray(updates.map(\.achievedAtMs))])
        var recorded = RecordedScores()
        for row in rows {
            recorded.improved.append(ScoreUpdate(
                board: try BoardID(parsing: try row.decode(0, as: String.self)),
                userID: try row.decode(1, as: String.self), score: try row.decode(2, as: Int64.self),
                achievedAtMs: try row.decode(3, as: Int64.self)))
            recorded.pendingMerge = try row.decode(4, as: Int64.self)
        }
        return recorded
    }

    /// Merges committed improvements into Redis, tells every instance, and confirms their
    /// pending merge. Updates of latest-score boards carry their row's revision (see
    /// `RecordedScores`). A merge that fails leaves the pending merge to `LeaderboardRepair`; its
    /// boards are read from Postgres here at once, and on every instance once it is overdue.
    public func publish(_ recorded: RecordedScores) async {
        guard let pendingMerge = recorded.pendingMerge else { return }
        do {
            try await merge(recorded.improved)
            behind.confirm(pendingMerge)
        } catch {
            let boards = Set(recorded.improved.map(\.board))
            behind.missed(boards, at: .now)
            logger.warning("leaderboard update missed Redis; it is merged again once Redis answers", metadata: [
                "boards": "\(boards.map(\.description).sorted())", "error": "\(error)",
            ])
        }
    }

    /// Merges improvements into the boards' sorted sets (max-merges, or replaces by revision
    /// on latest-score boards: merging one twice changes nothing), applies them to this
    /// instance's mirrors and announces them; throws when any merge failed (the others are
    /// applied and announced).
    func merge(_ improved: [ScoreUpdate]) async throws {
        guard !improved.isEmpty else { return }
        var changedBoards = Set<BoardID>()
        for update in improved {
            precondition(!update.board.keepsLatest || update.revision != nil, "a write of a latest-score board carries its revision")
            changedBoards.insert(update.board)
            rankCache.invalidate(board: update.board)
        }
        var changes: [BoardID: [BoardChange]] = [:]
        var failure: (any Error)?
        let replies = try await runMergeScripts(improved)
        for (update, reply) in zip(improved, replies) {
            do {
                if case .error(let message) = reply { throw RedisError(.server, message) }
                guard let version = reply.int else { throw RedisError(.unexpectedReply, "leaderboard merge") }
                if version > 0 {
                    changes[update.board, default: []].append(
                        BoardChange(version: version, userID: update.userID, score: update.score, achievedAtMs: update.achievedAtMs))
                } else if version == -1 {
                    // Not loaded: a load starting now reads the committed score from
                    // Postgres; one already under way got the write itself from the script.
                    try await ensureLoaded(update.board)
                }
            } catch {
                failure = failure ?? error
            }
        }
        // This instance reads its own writes at once; the others once the announcement arrives.
        for (board, boardChanges) in changes { mirrors?.apply(boardChanges, to: board) }
        var announcements: [RedisCommand] = []
        for board in changedBoards {
            announcements.append(RedisCommand(
                "PUBLISH", RedisArgument(BoardKeys.changes(board, namespace: configuration.namespace)), RedisArgument(board.description)))
            if let boardChanges = changes[board] {
                announcements.append(RedisCommand(
                    "PUBLISH", RedisArgument(BoardMirrors.channel(namespace: configuration.namespace)),
                    RedisArgument(bytes: BoardChange.encode(boardChanges, board: board))))
            }
        }
        _ = try? await redis.pipeline(announcements)
        if let failure { throw failure }
    }

    // MARK: reads

    /// A page of the board, best first.
    public func top(_ board: BoardID, limit: Int, cursor: String, deadline: ContinuousClock.Instant? = nil) async throws -> LeaderboardPage {
        let position: LeaderboardCursor?
        if cursor.isEmpty {
            position = nil
        } else {
            guard let parsed = LeaderboardCursor(encoded: cursor) else {
                throw RPCError(.invalidArgument, "cursor: not a cursor returned by Top")
            }
            position = parsed
        }
        if behind.contains(board) {
            return try await topFromDatabase(board, limit: limit, after: position, deadline: deadline)
        }
        if let mirrors, case .answer(let page) = mirrors.top(board, limit: limit, after: position) {
            return page
        }
        do {
            return try await onLoadedBoard(board) { try await topFromRedis(board, limit: limit, after: position) }
        } catch let error as RedisError {
            logger.debug("Top from Postgres: Redis unavailable", metadata: ["error": "\(error)"])
            return try await topFromDatabase(board, limit: limit, after: position, deadline: deadline)
        }
    }

    func topFromRedis(_ board: BoardID, limit: Int, after position: LeaderboardCursor?) async throws -> BoardReply<LeaderboardPage> {
        let keys = keys(board)
        return try await redis.run(
            LeaderboardScripts.top, keys: [keys.z, keys.ready],
            arguments: [RedisArgument(limit), RedisArgument(position.map { String($0.score) } ?? ""), RedisArgument(position?.member ?? "")],
            decoding: { reply in try Self.decodeTop(reply, limit: limit) })
    }

    /// The user's rank with `neighbours` entries above and below; nil when the user has no
    /// score on the board.
    /// The `Rank` answer cache of this instance.
    public var rankCacheStatistics: CacheStatistics { rankCache.statistics }

    /// The mirrors' users, `Rank`s and `Top`s answered from them, and those that went to Redis instead.
    public var mirrorStatistics: CacheStatistics { mirrors?.statistics ?? CacheStatistics(entries: 0, hits: 0, misses: 0) }

    public func rank(_ board: BoardID, user: String, neighbours: Int, deadline: ContinuousClock.Instant? = nil) async throws -> RankWindow? {
        if behind.contains(board) {
            return try await rankFromDatabase(board, user: user, neighbours: neighbours, deadline: deadline)
        }
        if let mirrors, case .answer(let window) = mirrors.rank(board, user: user, neighbours: neighbours) {
            return window
        }
        if let cached = rankCache.lookup(board: board, user: user, neighbours: neighbours) { return cached }
        do {
            let window = try await onLoadedBoard(board) {
                try await rankFromRedis(board, user: user, neighbours: neighbours)
            }
            if let window { rankCache.store(window, board: board, user: user, neighbours: neighbours) }
            return window
        } catch let error as RedisError {
            logger.debug("Rank from Postgres: Redis unavailable", metadata: ["error": "\(error)"])
            return try await rankFromDatabase(board, user: user, neighbours: neighbours, deadline: deadline)
        }
    }

    /// Runs a read that answers `.notLoaded` when the board is not in Redis: loads it (or
    /// waits for the instance loading it) and reads again.
    private func onLoadedBoard<Answer: Sendable>(
        _ board: BoardID, _ read: () async throws -> BoardReply<Answer>
    ) async throws -> Answer {
        for _ in 0..<2 {
            if case .answer(let answer) = try await read() {
                return answer
            }
            try await ensureLoaded(board)
        }
        throw RedisError(.unavailable, "board \(board) could not be loaded")
    }

    static func split(_ window: [LeaderboardEntry], at rank: Int, total: Int) -> RankWindow? {
        guard let index = window.firstIndex(where: { $0.rank == rank }) else { return nil }
        return RankWindow(entry: window[index], above: Array(window[..<index]), below: Array(window[(index + 1)...]), total: total)
    }

    // MARK: loading from the truth

    /// Loads the board unless another instance is already doing so (then waits for it).
    func ensureLoaded(_ board: BoardID) async throws {
        let keys = keys(board)
        for _ in 0..<600 {
            if try await redis.send(RedisCommand("EXISTS", keys.ready)).int == 1 { return }
            if try await rebuildIfFree(board) { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw RedisError(.timeout, "board \(board) is still being rebuilt")
    }

    /// Rebuilds the board's sorted set from Postgres now.
    public func rebuild(_ board: BoardID) async throws {
        while try await !rebuildIfFree(board) {
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    private func rebuildIfFree(_ board: BoardID) async throws -> Bool {
        let keys = keys(board)
        let started = try await redis.run(
            LeaderboardScripts.beginLoad, keys: [keys.building, keys.nextZ, keys.nextM, keys.nextRevisions],
            arguments: [RedisArgument(configuration.buildLockTTL.milliseconds)])
        guard started.int == 1 else { return false }
        let clock = ContinuousClock.now
        var loaded = 0
        // Latest-score boards load each row with its revision: a row read before a live write
        // committed loses to it in the staging copy, whichever reaches Redis first.
        let latest = board.keepsLatest
        do {
            // Keyset pagination over the primary key: constant cost per chunk at any size. From
            // the primary: the rebuilt copy replaces the live one, and a replica that lacks a
            // score already merged into the live copy would drop it from Redis until the next
            // rebuild (`readyTTL`); the primary has every score committed before the rebuild
            // began.
            var afterUser = ""
            while true {
                let rows = try await database.withConnection { connection in
                    // A row without a revision (written before revisions existed) is revision 0:
                    // any revisioned write replaces it.
                    try await connection.query(
                        """
                        SELECT user_id, score, (extract(epoch FROM achieved_at) * 1000)::bigint, COALESCE(revision, 0)
                        FROM leaderboard_scores WHERE board = $1 AND user_id > $2
                        ORDER BY user_id LIMIT $3
                        """,
                        [board.description, afterUser, configuration.loadChunk])
                }
                if rows.isEmpty { break }
                var arguments: [RedisArgument] = []
                arguments.reserveCapacity(rows.count * (latest ? 4 : 3))
                for row in rows {
                    let user = try row.decode(0, as: String.self)
                    let member = BoardMember(userID: user, achievedAtMs: try row.decode(2, as: Int64.self))
                    arguments.append(RedisArgument(user))
                    arguments.append(RedisArgument(try row.decode(1, as: Int64.self)))
                    arguments.append(RedisArgument(member.encoded))
                    if latest { arguments.append(RedisArgument(try row.decode(3, as: Int64.self))) }
                    afterUser = user
                }
                if latest {
                    try await redis.run(LeaderboardScripts.loadLatestChunk, keys: [keys.nextZ, keys.nextM, keys.nextRevisions], arguments: arguments)
                } else {
                    try await redis.run(LeaderboardScripts.loadChunk, keys: [keys.nextZ, keys.nextM], arguments: arguments)
                }
                loaded += rows.count
                if rows.count < configuration.loadChunk { break }
            }
            try await redis.run(
                LeaderboardScripts.finishLoad,
                keys: [keys.nextZ, keys.nextM, keys.z, keys.m, keys.ready, keys.building, keys.nextRevisions, keys.revisions],
                arguments: [RedisArgument(configuration.readyTTL.milliseconds), RedisArgument(UUID().uuidString)])
        } catch {
            _ = try? await redis.send(RedisCommand("DEL", keys.building))
            throw error
        }
        rankCache.invalidate(board: board)
        mirrors?.forget(board)
        logger.info("leaderboard rebuilt from Postgres", metadata: [
            "board": "\(board)", "users": "\(loaded)", "ms": "\((ContinuousClock.now - clock).milliseconds)",
        ])
        return true
    }
}
