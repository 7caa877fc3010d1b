import Storage
import Synchronization

/// One board's copy in this process: the Redis sorted set as loaded once, plus every
/// announced improvement since, and what is known of its freshness.
///
/// It answers only while the last check against Redis (`BoardMirrors`' poll) is recent and
/// found it complete: the incarnation it was loaded from (the `:ready` token, new with every
/// rebuild) still live, and every version up to the one Redis had at the check before
/// applied. Otherwise the reader goes to Redis, as without a mirror.
final class BoardMirror: Sendable {
    struct State {
        var board: RankedBoard
        /// The `:ready` value of the sorted set it was loaded from.
        let incarnation: [UInt8]
        /// Every version up to this one is applied; later ones are in `pending`.
        var applied: Int64
        var pending: Set<Int64> = []
        /// Versions Redis had at earlier checks, each to be applied by its `due` time.
        var expected: [(version: Int64, due: ContinuousClock.Instant)] = []
        var verifiedAt: ContinuousClock.Instant
        var lastRead: ContinuousClock.Instant

        func isFresh(now: ContinuousClock.Instant, freshness: Duration) -> Bool { now - verifiedAt <= freshness }
    }

    let boardID: BoardID
    private let state: Mutex<State>

    init(boardID: BoardID, board: RankedBoard, incarnation: [UInt8], version: Int64, at now: ContinuousClock.Instant) {
        self.boardID = boardID
        state = Mutex(State(board: board, incarnation: incarnation, applied: version, verifiedAt: now, lastRead: now))
    }

    /// The user's window (nil: no score here) while the mirror is fresh, else `.notLoaded`.
    func rank(user: String, neighbours: Int, now: ContinuousClock.Instant, freshness: Duration) -> LeaderboardStore.BoardReply<RankWindow?> {
        // Every event loop reads here: only the copy of the entries is made under the lock.
        let found = state.withLock { state -> LeaderboardStore.BoardReply<RankedBoard.Neighbourhood?> in
            state.lastRead = now
            guard state.isFresh(now: now, freshness: freshness) else { return .notLoaded }
            return .answer(state.board.neighbourhood(of: user, neighbours: neighbours))
        }
        guard case .answer(let neighbourhood) = found else { return .notLoaded }
        return .answer(neighbourhood?.window)
    }

    /// A page of `limit` entries after the cursor's entry (from the top without one) while
    /// the mirror is fresh, else `.notLoaded`.
    func top(limit: Int, after cursor: RankedBoard.Entry?, now: ContinuousClock.Instant, freshness: Duration) -> LeaderboardStore.BoardReply<LeaderboardPage> {
        let found = state.withLock { state -> (entries: [LeaderboardEntry], start: Int, total: Int)? in
            state.lastRead = now
            guard state.isFresh(now: now, freshness: freshness) else { return nil }
            let start = cursor.map { state.board.start(after: $0) } ?? 0
            return (state.board.entries(from: start, limit: limit), start, state.board.count)
        }
        guard let found else { return .notLoaded }
        return .answer(LeaderboardPage(entries: found.entries, start: found.start, limit: limit, total: found.total))
    }

    func isFresh(now: ContinuousClock.Instant, freshness: Duration) -> Bool {
        state.withLock { $0.isFresh(now: now, freshness: freshness) }
    }

    /// Merges announced improvements (idempotent: each is a max-merge; repeats are harmless).
    func apply(_ changes: [BoardChange]) {
        state.withLock { state in
            for change in changes {
                state.board.merge(RankedBoard.Entry(userID: change.userID, score: change.score, achievedAtMs: change.achievedAtMs))
                if change.version > state.applied { state.pending.insert(change.version) }
            }
            while state.pending.remove(state.applied + 1) != nil { state.applied += 1 }
        }
    }

    enum Check: Equatable {
        case fresh
        /// Rebuilt, flushed, or a version went missing: load it again.
        case outdated
    }

    /// Compares with what Redis holds now (its `:ready` value and version). Versions are
    /// announced after they are merged, so one Redis has may still be on its way: it must
    /// have arrived `gapGrace` later.
    func check(incarnation: [UInt8]?, version: Int64, now: ContinuousClock.Instant, gapGrace: Duration) -> Check {
        state.withLock { state in
            guard incarnation == state.incarnation, version >= state.applied else { return .outdated }
            while let first = state.expected.first, first.due <= now {
                guard state.applied >= first.version else { return .outdated }
                state.expected.removeFirst()
            }
            if version > state.applied, version > (state.expected.last?.version ?? state.applied) {
                state.expected.append((version, now + gapGrace))
            }
            state.verifiedAt = now
            return .fresh
        }
    }

    var users: Int { state.withLock { $0.board.count } }
    var lastRead: ContinuousClock.Instant { state.withLock { $0.lastRead } }
}
