import Synchronization

/// `Rank` answers reused for a short time, so a hot user asking every frame costs one Redis
/// call per TTL, not one per request. An improvement on a board bumps that board's
/// generation, which retires its cached answers on this instance at once (O(1)); other
/// instances' answers may lag by at most the TTL.
final class RankCache: Sendable {
    private struct Key: Hashable {
        var board: BoardID
        var user: String
        var neighbours: Int
    }

    private struct Entry {
        var window: RankWindow
        var expires: ContinuousClock.Instant
        var generation: Int
    }

    private struct State {
        var entries: [Key: Entry] = [:]
        var generations: [BoardID: Int] = [:]
        var hits = 0
        var misses = 0
    }

    private let ttl: Duration
    private let capacity: Int
    private let state = Mutex(State())

    init(ttl: Duration, capacity: Int) {
        self.ttl = ttl
        self.capacity = capacity
    }

    func lookup(board: BoardID, user: String, neighbours: Int) -> RankWindow? {
        guard ttl > .zero else { return nil }
        let now = ContinuousClock.now
        return state.withLock { state in
            guard let entry = state.entries[Key(board: board, user: user, neighbours: neighbours)],
                entry.expires > now, entry.generation == state.generations[board, default: 0]
            else {
                state.misses += 1
                return nil
            }
            state.hits += 1
            return entry.window
        }
    }

    func store(_ window: RankWindow, board: BoardID, user: String, neighbours: Int) {
        guard ttl > .zero else { return }
        let now = ContinuousClock.now
        state.withLock { state in
            if state.entries.count >= capacity {
                state.entries = state.entries.filter { $0.value.expires > now }
                if state.entries.count >= capacity { state.entries.removeAll(keepingCapacity: true) }
            }
            state.entries[Key(board: board, user: user, neighbours: neighbours)] =
                Entry(window: window, expires: now + ttl, generation: state.generations[board, default: 0])
        }
    }

    func invalidate(board: BoardID) {
        state.withLock { $0.generations[board, default: 0] += 1 }
    }

    var count: Int { state.withLock { $0.entries.count } }

    /// Entries (live or not yet swept), hits and misses; zeros when the cache is off (TTL 0).
    var statistics: CacheStatistics {
        state.withLock { CacheStatistics(entries: $0.entries.count, hits: $0.hits, misses: $0.misses) }
    }
}
