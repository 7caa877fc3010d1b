import Storage
import Synchronization

/// One board's copy in this process: the Redis sorted set as loaded once, plus every
/// announced improvement since (on a latest-score board: every announced replacement), and
/// what is known of its freshness.
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
        /// Latest-score boards only: the version of the change that last set each user here.
        /// A user not in it is as the snapshot has them (`snapshotVersion`). Best-score
        /// boards keep it empty: a max-merge needs no order.
        var setAt: [ExactID: Int64] = [:]

        func isFresh(now: ContinuousClock.Instant, freshness: Duration) -> Bool { now - verifiedAt <= freshness }
    }

    let boardID: BoardID
    /// `boardID.keepsLatest`, read once per change applied.
    private let keepsLatest: Bool
    /// The board's version read before its sorted set was paged in (`version` of `init`).
    ///
    /// On a latest-score board every entry of the snapshot counts as set at this version, and
    /// a change replaces a user's entry only when its version is newer than the one that last
    /// set them. That converges to Redis' board:
    /// - The snapshot was read after the version was, so it holds every change up to
    ///   `snapshotVersion`: an older change, whenever its announcement arrives (announcements
    ///   of different writers can arrive out of version order, and one published before the
    ///   subscription never arrives), would only undo a newer state, and is ignored. (Counting
    ///   snapshot entries as version 0 instead would let such a late announcement regress a
    ///   user for good: nothing after it corrects them.)
    /// - An entry the paging read wrongly (a user moved while pages were read: seen twice, or
    ///   not at all) moved by a change after `snapshotVersion`, which replaces it.
    /// - Every version after `snapshotVersion` is delivered (buffered during the load, or
    ///   announced after) or the mirror is declared outdated by the gap check (`check`), so
    ///   no newer change is missed; per user the highest version wins whatever the arrival
    ///   order, as in Redis, where a user's versions follow their revisions.
    let snapshotVersion: Int64
    private let state: Mutex<State>

    init(boardID: BoardID, board: RankedBoard, incarnation: [UInt8], version: Int64, at now: ContinuousClock.Instant) {
        self.boardID = boardID
        keepsLatest = boardID.keepsLatest
        snapshotVersion = version
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

    /// Merges announced improvements (idempotent: each is a max-merge; repeats are harmless),
    /// or on a latest-score board applies announced replacements newer than the user's entry.
    func apply(_ changes: [BoardChange]) {
        state.withLock { state in
            for change in changes {
                let entry = RankedBoard.Entry(userID: change.userID, score: change.score, achievedAtMs: change.achievedAtMs)
                if keepsLatest {
                    let user = ExactID(change.userID)
                    if change.version > state.setAt[user] ?? snapshotVersion {
                        state.setAt[user] = change.version
                        state.board.replace(entry)
                    }
                } else {
                    state.board.merge(entry)
                }
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
