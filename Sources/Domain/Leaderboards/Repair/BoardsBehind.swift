import Storage
import Synchronization

/// What this instance knows of boards whose Redis copy is behind their truth in Postgres, and
/// the merges it confirmed but has not yet deleted from `leaderboard_pending_merges`.
///
/// The knowledge is Postgres': every sweep of `LeaderboardRepair` reads which boards have
/// pending merges older than `repairAfter` (committed, never confirmed: Redis was down or the
/// writer died), on every instance. A merge this instance saw fail counts at once, until a
/// sweep that started after its pending row came due has read Postgres' answer. Reads of a
/// board that is behind go to Postgres, never to its mirror or sorted set.
final class BoardsBehind: Sendable {
    private struct State {
        /// Boards with overdue pending merges, as the last sweep read them.
        var overdue: Set<BoardID> = []
        /// Set while a repair runs and has not finished its first sweep: until then nothing is
        /// known, so every board counts as behind.
        var awaitingFirstSweep = false
        /// Boards whose merge failed here, and when.
        var missed: [BoardID: ContinuousClock.Instant] = [:]
        /// Pending merges confirmed here, to delete in the next sweep.
        var confirmed: [Int64] = []
    }

    /// Pending merges this old count as lost (their writer confirms far sooner).
    let repairAfter: Duration
    private let state = Mutex(State())
    /// True while no board counts as behind (the usual case): `Rank` and `Top` then read one
    /// atomic instead of taking the lock.
    private let noneBehind = Atomic<Bool>(true)

    /// Confirmations held for the next sweep; past this many (no repair running) the oldest
    /// rows stay and are merged again later, which changes nothing.
    static let maxConfirmed = 100_000

    init(repairAfter: Duration) {
        self.repairAfter = repairAfter
    }

    func contains(_ board: BoardID) -> Bool {
        if noneBehind.load(ordering: .acquiring) { return false }
        return state.withLock { state in
            state.awaitingFirstSweep || state.overdue.contains(board) || state.missed[board] != nil
        }
    }

    /// Runs a change of what counts as behind, keeping `noneBehind` true to it.
    private func update(_ change: (inout State) -> Void) {
        state.withLock { state in
            change(&state)
            noneBehind.store(!state.awaitingFirstSweep && state.overdue.isEmpty && state.missed.isEmpty, ordering: .releasing)
        }
    }

    /// The merge named by this row reached Redis.
    func confirm(_ pendingMerge: Int64) {
        state.withLock { state in
            if state.confirmed.count < Self.maxConfirmed { state.confirmed.append(pendingMerge) }
        }
    }

    func takeConfirmed() -> [Int64] {
        state.withLock { state in
            defer { state.confirmed = [] }
            return state.confirmed
        }
    }

    /// Merges into these boards failed after their commit.
    func missed(_ boards: some Sequence<BoardID>, at now: ContinuousClock.Instant) {
        update { state in
            for board in boards { state.missed[board] = now }
        }
    }

    /// A repair starts sweeping: nothing is known until its first sweep.
    func awaitFirstSweep() {
        update { $0.awaitingFirstSweep = true }
    }

    /// A sweep that read Postgres from `started` on found these boards behind (nil: it could not
    /// read them, and what was known stays). Misses whose rows were due by then are in
    /// Postgres' answer, so they are forgotten here.
    func swept(overdue: Set<BoardID>?, started: ContinuousClock.Instant) {
        update { state in
            state.awaitingFirstSweep = false
            guard let overdue else { return }
            state.overdue = overdue
            state.missed = state.missed.filter { $0.value + repairAfter >= started }
        }
    }
}
