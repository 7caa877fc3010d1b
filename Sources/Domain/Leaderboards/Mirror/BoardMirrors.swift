public import Storage
public import Logging
public import ServiceLifecycle
import Synchronization

/// The boards this instance answers `Rank` and `Top` (hence `Watch`) for from memory.
///
/// On a board of a million users Redis alone spends about 25 us per `Rank` (ZREVRANK plus the
/// window), and the round trips cost Tally twice that: with both on two cores, `Rank` stopped
/// near 15k/s. A board that is read is loaded here once, from its sorted set, and kept
/// current by the improvements every instance announces (`BoardChange`, on one pub/sub
/// channel); a rank is then a lookup in `RankedBoard`, microseconds with no I/O.
///
/// Redis stays the source of every answer: a mirror is checked against the board's
/// incarnation (`:ready`, new with each rebuild) and version (`:v`, bumped by every merged
/// improvement) every `pollInterval`, and answers only while the last check passed within
/// `freshness`. A rebuilt or flushed board, or a version not received within `gapGrace`
/// (an announcement lost with a connection, a writer that died between merge and announce),
/// drops the mirror; reads go to Redis until it is loaded again. Improvements made on this
/// instance are applied at once, so a writer reads its own writes; another instance's show
/// after the announcement reaches here (sub-millisecond on one host).
///
/// Memory is bounded by `maxUsers` over all mirrored boards (a million users with short ids
/// added 135 MiB to the server's RSS, loaded in 1.7 s) and their number by `maxBoards`; a
/// board that would not fit is read from Redis, and a mirror unread for `idleTimeout` is
/// dropped.
public final class BoardMirrors: Service, Sendable {
    public struct Configuration: Sendable {
        /// Users held over all mirrored boards; 0 turns mirroring off.
        public var maxUsers: Int
        /// Boards mirrored (or loading) at once: each costs its checks every `pollInterval`,
        /// and reads of made-up board names must not grow that without bound.
        public var maxBoards: Int = 1000
        public var pollInterval: Duration
        /// A mirror answers while its last passed check is at most this old.
        public var freshness: Duration
        /// How long an announced version may take to arrive before it counts as lost.
        public var gapGrace: Duration
        public var idleTimeout: Duration
        /// Entries per ZREVRANGE while loading.
        public var loadChunk: Int
        /// A board that did not fit, or whose load failed, is tried again after this long.
        public var retryAfter: Duration
        /// The leaderboards' Redis namespace (`LeaderboardStore.Configuration.namespace`).
        public var namespace: String = "lb"

        /// Up to 2,000,000 users (about 270 MiB), checked every 250 ms, answering for 1 s
        /// after a check, versions given 1 s to arrive, dropped after 10 idle minutes.
        public static var defaults: Configuration {
            Configuration(maxUsers: 2_000_000, pollInterval: .milliseconds(250), freshness: .seconds(1),
                          gapGrace: .seconds(1), idleTimeout: .seconds(600), loadChunk: 10_000, retryAfter: .seconds(30))
        }

        public init(maxUsers: Int, pollInterval: Duration, freshness: Duration, gapGrace: Duration, idleTimeout: Duration,
                    loadChunk: Int, retryAfter: Duration) {
            self.maxUsers = maxUsers
            self.pollInterval = pollInterval
            self.freshness = freshness
            self.gapGrace = gapGrace
            self.idleTimeout = idleTimeout
            self.loadChunk = loadChunk
            self.retryAfter = retryAfter
        }
    }

    /// A board being loaded: the users it reserves, and improvements announced meanwhile.
    private struct Loading {
        var reserved: Int = 0
        var changes: [BoardChange] = []
    }

    private struct State {
        var mirrors: [BoardID: BoardMirror] = [:]
        var loading: [BoardID: Loading] = [:]
        var notBefore: [BoardID: ContinuousClock.Instant] = [:]
        var running = false
    }

    public let configuration: Configuration
    let redis: RedisClient
    let subscriber: RedisSubscriber
    let logger: Logger
    private let state = Mutex(State())
    private let requests: AsyncStream<BoardID>
    private let requested: AsyncStream<BoardID>.Continuation
    private let hits = Atomic<Int>(0)
    private let misses = Atomic<Int>(0)

    /// Improvements buffered per loading board before the load counts as failed.
    static let maxBuffered = 100_000

    public init(redis: RedisClient, subscriber: RedisSubscriber, configuration: Configuration = .defaults,
                logger: Logger = Logger(label: "tally.leaderboards")) {
        self.redis = redis
        self.subscriber = subscriber
        self.configuration = configuration
        self.logger = logger
        (requests, requested) = AsyncStream.makeStream(of: BoardID.self)
    }

    /// The pub/sub channel of every board's improvements.
    static func channel(namespace: String) -> String { "\(namespace):improved" }

    // MARK: reads and writes

    /// The user's window from the board's mirror when it is loaded and fresh; otherwise
    /// `.notLoaded` (read Redis), and the board is loaded for the next reads.
    func rank(_ board: BoardID, user: String, neighbours: Int) -> LeaderboardStore.BoardReply<RankWindow?> {
        read(board) { mirror, now in mirror.rank(user: user, neighbours: neighbours, now: now, freshness: configuration.freshness) }
    }

    /// A `Top` page from the board's mirror, as `rank`.
    func top(_ board: BoardID, limit: Int, after cursor: LeaderboardCursor?) -> LeaderboardStore.BoardReply<LeaderboardPage> {
        let key = cursor.flatMap { cursor in
            BoardMember(encoded: cursor.member).map { RankedBoard.Entry(userID: $0.userID, score: cursor.score, achievedAtMs: $0.achievedAtMs) }
        }
        return read(board) { mirror, now in mirror.top(limit: limit, after: key, now: now, freshness: configuration.freshness) }
    }

    private func read<Answer>(
        _ board: BoardID, _ answer: (BoardMirror, ContinuousClock.Instant) -> LeaderboardStore.BoardReply<Answer>
    ) -> LeaderboardStore.BoardReply<Answer> {
        let now = ContinuousClock.now
        let mirror = state.withLock { state -> BoardMirror? in
            if let mirror = state.mirrors[board] { return mirror }
            requestLoad(board, now: now, &state)
            return nil
        }
        guard let mirror, case .answer(let found) = answer(mirror, now) else {
            misses.add(1, ordering: .relaxed)
            return .notLoaded
        }
        hits.add(1, ordering: .relaxed)
        return .answer(found)
    }

    /// Improvements merged into Redis: into the board's mirror (or the load under way).
    func apply(_ changes: [BoardChange], to board: BoardID) {
        guard !changes.isEmpty else { return }
        let mirror = state.withLock { state -> BoardMirror? in
            if let mirror = state.mirrors[board] { return mirror }
            // Past the cap the load's result misses versions and is dropped: bounded memory.
            if let buffered = state.loading[board]?.changes.count, buffered < Self.maxBuffered {
                state.loading[board]?.changes.append(contentsOf: changes)
            }
            return nil
        }
        mirror?.apply(changes)
    }

    /// Drops the board's mirror (this instance rebuilt it); the next read loads it again. A
    /// load under way goes on: it checks the incarnation it read once it has read the board,
    /// and the polls check it after.
    func forget(_ board: BoardID) {
        state.withLock { state in
            state.mirrors[board] = nil
            state.notBefore[board] = nil
        }
    }

    /// Mirrored users, `Rank` and `Top` answers from memory, and those that went to Redis.
    var statistics: CacheStatistics {
        let users = state.withLock { state in state.mirrors.values.reduce(0) { $0 + $1.users } }
        return CacheStatistics(entries: users, hits: hits.load(ordering: .relaxed), misses: misses.load(ordering: .relaxed))
    }

    /// Whether the board is mirrored and fresh now (tests).
    func isAnswering(_ board: BoardID) -> Bool {
        guard let mirror = state.withLock({ $0.mirrors[board] }) else { return false }
        return mirror.isFresh(now: .now, freshness: configuration.freshness)
    }

    /// Whether a load of the board is under way, and until when a refused or failed one
    /// waits before the board is asked for again (tests).
    func loadState(of board: BoardID) -> (loading: Bool, retryAt: ContinuousClock.Instant?) {
        state.withLock { state in (state.loading[board] != nil, state.notBefore[board]) }
    }

    private func requestLoad(_ board: BoardID, now: ContinuousClock.Instant, _ state: inout State) {
        guard configuration.maxUsers > 0, state.running, state.loading[board] == nil,
            state.mirrors.count + state.loading.count < configuration.maxBoards
        else { return }
        if let notBefore = state.notBefore[board], now < notBefore { return }
        state.loading[board] = Loading()
        requested.yield(board)
    }

    // MARK: running

    public func run() async throws {
        guard configuration.maxUsers > 0 else {
            try? await gracefulShutdown()
            return
        }
        let announcements = subscriber.messages(on: Self.channel(namespace: configuration.namespace))
        state.withLock { $0.running = true }
        await withDiscardingTaskGroup { group in
            group.addTask { await self.follow(announcements) }
            group.addTask { await self.poll() }
            for await board in requests.cancelOnGracefulShutdown() {
                group.addTask { await self.load(board) }
            }
            group.cancelAll()
        }
        state.withLock { $0 = State() }
    }

    /// Applies every instance's announced improvements.
    private func follow(_ announcements: AsyncStream<[UInt8]>) async {
        for await payload in announcements {
            guard let (board, changes) = BoardChange.decode(payload) else { continue }
            apply(changes, to: board)
        }
    }

    /// Checks every mirror against Redis, and drops the outdated and the idle.
    private func poll() async {
        while !Task.isCancelled {
            do { try await Task.sleep(for: configuration.pollInterval) } catch { return }
            let mirrors = state.withLock { Array($0.mirrors.values) }
            guard !mirrors.isEmpty else { continue }
            var commands: [RedisCommand] = []
            commands.reserveCapacity(mirrors.count * 2)
            for mirror in mirrors {
                let keys = BoardKeys(mirror.boardID, namespace: configuration.namespace)
                commands.append(RedisCommand("GET", keys.ready))
                commands.append(RedisCommand("GET", keys.version))
            }
            // Unreachable Redis, or one still loading its data (error replies): no check passes,
            // so the mirrors stop answering within `freshness`; an error is not a missing board.
            guard let replies = try? await redis.pipeline(commands),
                !replies.contains(where: { if case .error = $0 { true } else { false } })
            else { continue }
            let now = ContinuousClock.now
            for (index, mirror) in mirrors.enumerated() {
                let incarnation = replies[2 * index].bytes
                let version = replies[2 * index + 1].int ?? 0
                let reason: String
                if now - mirror.lastRead > configuration.idleTimeout {
                    reason = "idle"
                } else if mirror.check(incarnation: incarnation, version: version, now: now, gapGrace: configuration.gapGrace) == .outdated {
                    reason = "outdated"
                } else {
                    continue
                }
                state.withLock { state in
                    if state.mirrors[mirror.boardID] === mirror { state.mirrors[mirror.boardID] = nil }
                }
                logger.info("leaderboard mirror dropped", metadata: ["board": "\(mirror.boardID)", "reason": "\(reason)"])
            }
        }
    }

    /// Loads a board from its sorted set and installs its mirror, unless it does not fit, is
    /// not in Redis, or changed incarnation while being read.
    private func load(_ board: BoardID) async {
        logger.debug("leaderboard mirror loading", metadata: ["board": "\(board)"])
        var retry = Self.retrySoon
        do {
            switch try await fetch(board) {
            case .mirrored(let mirror, let took):
                logger.info("leaderboard mirrored", metadata: ["board": "\(board)", "users": "\(mirror.users)", "ms": "\(took.milliseconds)"])
                return
            case .tooLarge:
                retry = configuration.retryAfter
            case .notNow:
                break
            }
        } catch {
            logger.debug("leaderboard mirror not loaded", metadata: ["board": "\(board)", "error": "\(error)"])
        }
        state.withLock { state in
            state.loading[board] = nil
            state.notBefore[board] = ContinuousClock.now + retry
        }
    }

    /// A board not in Redis yet or rebuilt while being read is tried again this soon.
    static let retrySoon = Duration.seconds(1)
    /// How long a load waits for the board's rebuild into Redis (`LeaderboardStore`'s build lock TTL).
    static let rebuildWait = Duration.seconds(120)

    private enum Load {
        /// With the time it took to read the board and build its mirror.
        case mirrored(BoardMirror, took: Duration)
        case tooLarge
        /// Not in Redis yet, rebuilt while being read, or the service stopped meanwhile.
        case notNow
    }

    private func fetch(_ board: BoardID) async throws -> Load {
        // Announcements must be flowing before the version is read: every later one arrives.
        await subscriber.waitUntilSubscribed(timeout: .seconds(1))
        let keys = BoardKeys(board, namespace: configuration.namespace)
        // The read that asked for the mirror usually finds the board missing from Redis and
        // rebuilds it from Postgres (seconds for a big board): wait for that rebuild.
        var head: [RESPValue] = []
        let waitUntil = ContinuousClock.now + Self.rebuildWait
        repeat {
            head = try await redis.pipeline([RedisCommand("GET", keys.ready), RedisCommand("GET", keys.version), RedisCommand("ZCARD", keys.z)])
            if !head[0].isNull { break }
            try await Task.sleep(for: configuration.pollInterval)
        } while ContinuousClock.now < waitUntil
        guard let incarnation = head[0].bytes, let users = head[2].int else { return .notNow }  // not in Redis
        let started = ContinuousClock.now
        let version = head[1].int ?? 0
        let fits = state.withLock { state -> Bool in
            let used = state.mirrors.values.reduce(0) { $0 + $1.users } + state.loading.values.reduce(0) { $0 + $1.reserved }
            guard used + Int(users) <= configuration.maxUsers else { return false }
            state.loading[board]?.reserved = Int(users)
            return true
        }
        guard fits else {
            logger.info("leaderboard too large to mirror; Rank reads Redis", metadata: [
                "board": "\(board)", "users": "\(users)", "max": "\(configuration.maxUsers)",
            ])
            return .tooLarge
        }
        // Pages by rank: a user moving meanwhile may be read twice (the first copy in board
        // order counts) or missed; a move is a change announced with a version after
        // `version`, which puts the user right (see `BoardMirror.snapshotVersion`).
        var entries: [RankedBoard.Entry] = []
        entries.reserveCapacity(Int(users) + configuration.loadChunk)
        var start = 0
        while true {
            let page = try await redis.send(
                RedisCommand("ZREVRANGE", keys.z, RedisArgument(start), RedisArgument(start + configuration.loadChunk - 1), "WITHSCORES")
            ) { reply in
                var page: [RankedBoard.Entry] = []
                page.reserveCapacity(reply.count / 2)
                LeaderboardStore.forEachEntry(reply, firstRank: 1) {
                    page.append(RankedBoard.Entry(userID: $0.userID, score: $0.score, achievedAtMs: $0.achievedAtMs))
                }
                return page
            }
            entries += page
            if page.count < configuration.loadChunk { break }
            start += configuration.loadChunk
        }
        guard try await redis.send(RedisCommand("GET", keys.ready)).bytes == incarnation else { return .notNow }  // rebuilt meanwhile
        let ranked = RankedBoard(entries)
        return state.withLock { state -> Load in
            guard let loading = state.loading.removeValue(forKey: board) else { return .notNow }  // stopped meanwhile
            let mirror = BoardMirror(boardID: board, board: ranked, incarnation: incarnation, version: version, at: .now)
            mirror.apply(loading.changes)
            state.mirrors[board] = mirror
            return .mirrored(mirror, took: ContinuousClock.now - started)
        }
    }
}
